/**
 * Ending an execution's hold on the limits, exactly once: the `released` flag, its end state
 * and both slot counters change in one transaction, conditional on the flag being absent. Used
 * by the Release step (the normal end) and by the dispatcher's sweep (an execution that died
 * without reaching Release: stopped from outside, timed out, or failed in MarkFailed).
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { z } from 'zod';
import { type ExecutionState, takesSlot } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { releaseSlotItems } from '../repo/counters.ts';
import { type ExecutionRecord, executions } from '../repo/executions.ts';

/** How the execution ended, as recorded by whoever releases it. */
export interface Ending {
  state: z.infer<typeof ExecutionState>;
  endedAt: string;
  error?: { name: string; message: string };
}

/**
 * Mark the execution released with `ending` and give its slot back. Returns false when it was
 * already released (by Release, or by another sweep): then nothing changed.
 */
export async function releaseExecution(execution: ExecutionRecord, ending: Ending): Promise<boolean> {
  const set = ['#r = :t', '#e = :e', '#s = :s'];
  const names: Record<string, string> = { '#r': 'released', '#e': 'endedAt', '#s': 'state' };
  const values: Record<string, unknown> = { ':t': true, ':e': ending.endedAt, ':s': ending.state };
  if (ending.error) {
    set.push('#err = :err');
    names['#err'] = 'error';
    values[':err'] = ending.error;
  }
  const mark = {
    Update: {
      TableName: executions.name,
      Key: { id: execution.id },
      UpdateExpression: `SET ${set.join(', ')}`,
      ConditionExpression: 'attribute_not_exists(#r)',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
  };
  // Maintenance operations never took a slot: only the flag and the end time change.
  const slot =
    execution.hostId === undefined || !takesSlot(execution.kind) ? [] : releaseSlotItems(execution.hostId);
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: [mark, ...slot] }));
    return true;
  } catch (err) {
    const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
    if (!reasons) throw err;
    // Already released: a previous attempt (or the other releaser) did it.
    if (reasons[0]?.Code === 'ConditionalCheckFailed') return false;
    // A counter was already at zero: never go negative, but still end the execution.
    log('warn', 'slot counter already at zero', { executionId: execution.id, hostId: execution.hostId });
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: [mark] }));
      return true;
    } catch {
      return false;
    }
  }
}
