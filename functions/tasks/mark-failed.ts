/**
 * Any operation, after a failure (and the host Cleanup): records the error on the execution
 * (TIMED_OUT for Step Functions timeouts, else FAILED), sets the image to ERROR (or, for an
 * increment on an existing chain, back to READY: the chain's earlier backups stay valid), and
 * unlocks the VM only if this execution holds its lock. A failed `delete` leaves its image ERROR
 * (deletable again); a failed `flatten` leaves its chain as it was, READY. Idempotent.
 */
import { z } from 'zod';
import { executions } from '../repo/executions.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { heldBy, vms } from '../repo/vms.ts';
import { describeFailure, StepInput, step } from './common.ts';
import { failFlatten } from './flatten.ts';

export const MarkFailedInput = StepInput.extend({
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

const TIMEOUTS = new Set(['States.Timeout', 'States.HeartbeatTimeout']);

export const handler = step('MarkFailed', MarkFailedInput, async (input) => {
  const { executionId } = input;
  const execution = await executions.get(executionId);
  const error = describeFailure(input.error);
  const state = TIMEOUTS.has(input.error?.Error ?? '') ? 'TIMED_OUT' : 'FAILED';

  if (execution.kind === 'backup' && execution.imageId !== undefined) {
    const image = await images.find(execution.imageId);
    if (image?.state === 'LOCKED' && image.executionId === executionId) {
      const extendsChain = image.increments.length > 0;
      await images.update(image.id, { state: extendsChain ? 'READY' : 'ERROR' });
    }
  }
  if (execution.kind === 'delete' && execution.imageId !== undefined) {
    // The data may still be there: ERROR lets the user delete again (the VM forgot it already).
    await images
      .update(
        execution.imageId,
        { state: 'ERROR' },
        { condition: { expression: '#s = :d', names: { '#s': 'state' }, values: { ':d': 'DELETING' } } },
      )
      .catch((err) => {
        if (!isConditionFailed(err)) throw err;
      });
  }
  if (execution.kind === 'flatten') await failFlatten(executionId, execution.imageId);
  // Backups and in-place restores lock their VM; heldBy leaves any other lock alone.
  if ((execution.kind === 'backup' || execution.kind === 'restore') && execution.vmId !== undefined) {
    try {
      await vms.update(execution.vmId, {}, { remove: ['lock'], condition: heldBy(executionId) });
    } catch (err) {
      // Not ours (or the VM is gone): leave it alone.
      if (!isConditionFailed(err)) throw err;
    }
  }
  await executions.update(executionId, { state, phase: 'failed', error });
  return { state, error };
});
