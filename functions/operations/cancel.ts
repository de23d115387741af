/**
 * Cancelling an operation (`POST /executions/{id}/cancel`, `lifeboat execution cancel ID`): a
 * started one is stopped with StopExecution (it ends ABORTED, as AWS does for any stop; its
 * runner's next heartbeat is refused and it aborts the task), then ended at once through the
 * same endOperation as every other ending (./end.ts): its VM unlocked, a half backup's image
 * ERROR (an increment's chain READY again, its earlier points intact), the quota reservation
 * given back, its slot given back once, its backup job moved on. One not started yet is marked
 * ABORTED while it is still QUEUED, which the dispatcher's own start is conditional on, and
 * ended the same way (it holds no slot). A dispatcher that had read it QUEUED just before, and
 * started it meanwhile, finds it ended when it records the start: {@link stopCancelledStart}.
 */
import { DescribeExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { Conflict } from '#core/errors.ts';
import { CANCELLED, type User } from '#core/model.ts';
import { sfnClient } from '#platform/aws.ts';
import { releaseSlot } from '../repo/counters.ts';
import { type ExecutionRecord, executions } from '../repo/executions.ts';
import { dequeue } from '../repo/requests.ts';
import { isConditionFailed } from '../repo/table.ts';
import { type Ending, endOperation, undoMarks } from './end.ts';

/** The error name a cancel records on the execution it ends. */
/** Whether the execution has ended (or was ended by its Release, MarkFailed or the sweep). */
function isOver(record: ExecutionRecord): boolean {
  return record.released === true || (record.state !== 'QUEUED' && record.state !== 'RUNNING');
}

/** The 409 of an execution that already ended (`state`: how, when not the record's own). */
function alreadyEnded(record: ExecutionRecord, state: string = record.state): Conflict {
  const when = record.endedAt ? ` at ${record.endedAt}` : '';
  return new Conflict(`execution ${record.id} already ended ${state}${when}: nothing to cancel`);
}

/**
 * Mark a request that has not started ABORTED; undefined when it started meanwhile (the
 * dispatcher recorded its ARN, or its Admit moved it on).
 */
async function abortQueued(record: ExecutionRecord, ending: Ending): Promise<ExecutionRecord | undefined> {
  try {
    return await executions.update(
      record.id,
      { state: ending.state, phase: 'cancelled', endedAt: ending.endedAt, error: ending.error },
      {
        condition: {
          expression: '#s = :queued AND attribute_not_exists(#arn)',
          names: { '#s': 'state', '#arn': 'executionArn' },
          values: { ':queued': 'QUEUED' },
        },
      },
    );
  } catch (err) {
    if (isConditionFailed(err)) return undefined;
    throw err;
  }
}

/** StopExecution, then the status Step Functions gives the execution (ABORTED unless it ended first). */
async function stopMachine(executionArn: string, cause: string): Promise<string> {
  try {
    await sfnClient().send(new StopExecutionCommand({ executionArn, error: CANCELLED, cause }));
    const out = await sfnClient().send(new DescribeExecutionCommand({ executionArn }));
    return out.status ?? 'ABORTED';
  } catch (err) {
    // Gone from Step Functions (its history expired, or its stack was replaced): nothing runs it.
    if (err instanceof Error && err.name === 'ExecutionDoesNotExist') return 'ABORTED';
    throw err;
  }
}

/**
 * Cancel the operation of `record` on behalf of `by`; answers the ended record. 409 when it had
 * already ended (or ends by itself while being stopped).
 */
export async function cancelExecution(
  record: ExecutionRecord,
  by: Pick<User, 'name'>,
): Promise<ExecutionRecord> {
  if (isOver(record)) throw alreadyEnded(record);
  const ending: Ending = {
    state: 'ABORTED',
    endedAt: new Date().toISOString(),
    error: { name: CANCELLED, message: `cancelled by ${by.name}` },
  };
  let current = record;
  if (current.executionArn === undefined) {
    const aborted = await abortQueued(current, ending);
    if (aborted) {
      // Never started: it holds no slot; the dispatcher drops its request as stale anyway.
      await endOperation(aborted, ending, { heldSlot: false });
      await dequeue(aborted.id).catch(() => undefined);
      return executions.get(aborted.id);
    }
    current = await executions.get(record.id);
    if (isOver(current)) throw alreadyEnded(current);
    if (current.executionArn === undefined) {
      throw new Conflict(`execution ${record.id} is starting: cancel it again in a moment`);
    }
  }
  const status = await stopMachine(current.executionArn as string, ending.error?.message ?? 'cancelled');
  if (status !== 'ABORTED') {
    // It ended by itself just before the stop: its own Release records how.
    throw alreadyEnded(current, status);
  }
  // Read again: a step that ran before the stop (Admit's image, MarkFailed's error) is ended too.
  const stopped = await executions.get(current.id);
  if (await endOperation(stopped, ending, { wake: true })) {
    return executions.update(stopped.id, { phase: 'cancelled' });
  }
  return executions.get(stopped.id);
}

/**
 * The dispatcher started `record` although a cancel had already ended it (it read the request
 * QUEUED just before the cancel): stop the state machine, undo what its Admit may have marked
 * meanwhile, keep the record ABORTED, and give back the slot the dispatcher took for it
 * (`slotHostId`), which the cancel's ending did not hold. Best effort on the stop: a failure is
 * left to the runner, whose task token is then refused.
 */
export async function stopCancelledStart(
  record: ExecutionRecord,
  executionArn: string,
  slotHostId: number | undefined,
): Promise<void> {
  await stopMachine(executionArn, 'cancelled before it started').catch(() => undefined);
  await undoMarks(record, 'ABORTED');
  // Admit may have written RUNNING over the cancel's ABORTED before the stop.
  await executions.update(record.id, { state: 'ABORTED', phase: 'cancelled' });
  if (slotHostId !== undefined) await releaseSlot(slotHostId);
}
