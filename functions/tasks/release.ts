/**
 * Any operation, last step: ends the execution (SUCCEEDED unless MarkFailed already ended it),
 * gives its slot back exactly once (the `released` flag and both counters change in one
 * transaction), and wakes the dispatcher so a queued operation can take the slot.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { takesSlot } from '#core/model.ts';
import { dynamo } from '../aws.ts';
import { log } from '../log.ts';
import { releaseSlotItems } from '../repo/counters.ts';
import { executions } from '../repo/executions.ts';
import { wakeDispatcher } from '../wake.ts';
import { StepInput, step } from './common.ts';

export const handler = step('Release', StepInput, async (input) => {
  const { executionId } = input;
  const execution = await executions.get(executionId);
  const endedAt = execution.endedAt ?? new Date().toISOString();
  const state = execution.state === 'RUNNING' ? 'SUCCEEDED' : execution.state;
  const mark = {
    Update: {
      TableName: executions.name,
      Key: { id: executionId },
      UpdateExpression: 'SET #r = :t, #e = :e, #s = :s',
      ConditionExpression: 'attribute_not_exists(#r)',
      ExpressionAttributeNames: { '#r': 'released', '#e': 'endedAt', '#s': 'state' },
      ExpressionAttributeValues: { ':t': true, ':e': endedAt, ':s': state },
    },
  };
  if (!execution.released) {
    // Maintenance operations never took a slot: only the flag and the end time change.
    const slot =
      execution.hostId === undefined || !takesSlot(execution.kind) ? [] : releaseSlotItems(execution.hostId);
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: [mark, ...slot] }));
    } catch (err) {
      const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
      if (!reasons) throw err;
      if (reasons[0]?.Code !== 'ConditionalCheckFailed') {
        // A counter was already at zero: never go negative, but still end the execution.
        log('warn', 'slot counter already at zero', { executionId, hostId: execution.hostId });
        await dynamo()
          .send(new TransactWriteCommand({ TransactItems: [mark] }))
          .catch(() => undefined);
      }
      // Otherwise a previous attempt already released it.
    }
  }
  await wakeDispatcher(`execution ${executionId} ended`);
  return { state, endedAt };
});
