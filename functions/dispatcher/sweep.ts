/**
 * The sweep: finds executions that hold a slot although their state machine execution is over
 * (stopped from outside with StopExecution, timed out, killed with its stack, or failed before
 * its own Release ran) and ends them as Release and MarkFailed would have, through the same
 * endOperation (functions/operations/end.ts): every mark undone, slot given back once, a backup
 * job moved on. The dispatcher runs it on its scheduled runs (every minute), not on every
 * wake-up.
 */
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { takesSlot } from '#core/model.ts';
import { sfnClient } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { type Ending, endOperation } from '../operations/end.ts';
import { type ExecutionRecord, executions } from '../repo/executions.ts';

/** Started executions not yet released (scan: the table holds one record per operation). */
function unreleased(): Promise<ExecutionRecord[]> {
  return executions.list({
    expression: 'attribute_exists(#arn) AND attribute_not_exists(#r)',
    names: { '#arn': 'executionArn', '#r': 'released' },
  });
}

const ENDINGS: Record<string, Ending['state']> = {
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
  TIMED_OUT: 'TIMED_OUT',
  ABORTED: 'ABORTED',
};

/** How a dead execution ended, from the Step Functions status and our own record. */
function endingOf(record: ExecutionRecord, status: string, stopDate: Date | undefined): Ending {
  const endedAt = (stopDate ?? new Date()).toISOString();
  const state = ENDINGS[status] ?? 'FAILED';
  // A record MarkFailed already ended keeps its own state and error.
  if (record.state !== 'RUNNING' && record.state !== 'QUEUED') return { state: record.state, endedAt };
  if (state === 'SUCCEEDED') return { state, endedAt };
  return {
    state,
    endedAt,
    error: record.error ?? {
      name: state === 'ABORTED' ? 'Aborted' : state === 'TIMED_OUT' ? 'States.Timeout' : 'ExecutionFailed',
      message: `state machine execution ended ${status} without releasing its slot`,
    },
  };
}

/** Sweep once; answers the ids of the executions it ended. */
export async function sweep(): Promise<string[]> {
  const ended: string[] = [];
  for (const record of await unreleased()) {
    if (!takesSlot(record.kind) && record.state !== 'RUNNING') continue;
    let status: string;
    let stopDate: Date | undefined;
    try {
      const out = await sfnClient().send(new DescribeExecutionCommand({ executionArn: record.executionArn }));
      status = out.status ?? 'RUNNING';
      stopDate = out.stopDate;
    } catch (err) {
      if (err instanceof Error && err.name === 'ExecutionDoesNotExist') status = 'FAILED';
      else {
        log('warn', 'sweep: DescribeExecution failed', { executionId: record.id, error: String(err) });
        continue;
      }
    }
    if (status === 'RUNNING' || status === 'PENDING_REDRIVE') continue;
    if (await endOperation(record, endingOf(record, status, stopDate))) {
      ended.push(record.id);
      log('warn', 'sweep released a dead execution', {
        executionId: record.id,
        status,
        hostId: record.hostId,
      });
    }
  }
  return ended;
}
