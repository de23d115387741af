/**
 * Any operation, after a failure (and the host Cleanup): records the error on the execution
 * (TIMED_OUT for Step Functions timeouts, else FAILED) and undoes the operation's marks with
 * undoMarks (functions/operations/end.ts: the image to ERROR, or READY for a chain; the VM's
 * lock only if this execution holds it; a failed delete's image ERROR, deletable again; a failed
 * flatten's chain as it was and ACTIVE_FLATTEN cleared); a failed verify leaves its image
 * `verifyState` FAILED with the message, and so does a failed drill (its report FAILED too,
 * operations/drill.ts); a verification's failure (verify job, drill or a backup's read-back) is
 * counted and notified (operations/alerts.ts). ReleaseFailed, next, ends it. Idempotent.
 */
import { z } from 'zod';
import { verifyFailed } from '../operations/alerts.ts';
import { drillFailed } from '../operations/drill.ts';
import { undoMarks } from '../operations/end.ts';
import { recordVerification } from '../operations/verify.ts';
import { executions } from '../repo/executions.ts';
import { describeFailure, StepInput, step } from './common.ts';

export const MarkFailedInput = StepInput.extend({
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

const TIMEOUTS = new Set(['States.Timeout', 'States.HeartbeatTimeout']);

export const handler = step('MarkFailed', MarkFailedInput, async (input) => {
  const { executionId } = input;
  const execution = await executions.get(executionId);
  const error = describeFailure(input.error);
  const state = TIMEOUTS.has(input.error?.Error ?? '') ? 'TIMED_OUT' : 'FAILED';
  await undoMarks(execution, state);
  // A verify that failed (a file that does not read back as stored, or no host could read it).
  if (execution.kind === 'verify' && execution.imageId !== undefined) {
    await recordVerification(execution.imageId, {
      state: 'FAILED',
      message: `${error.name}: ${error.message}`,
    });
  }
  // A drill that failed: its report FAILED with why (naming the disk), the image FAILED too.
  const drillId = execution.params.drillId;
  if (execution.kind === 'drill' && typeof drillId === 'number') {
    await drillFailed(drillId, execution.imageId, `${error.name}: ${error.message}`);
  }
  // Told once (not again on a retry of this step): a verify job or drill, or a backup's own read-back.
  const found =
    execution.kind === 'verify' || execution.kind === 'drill' || error.name === 'BackupVerifyFailed';
  if (found && execution.state !== state) {
    await verifyFailed({
      datastoreId: execution.datastoreId,
      imageId: execution.imageId,
      vmId: execution.vmId,
      executionId,
      message: `${error.name}: ${error.message}`,
    });
  }
  // Last: a record not yet FAILED tells the sweep and Release that the marks may still be held.
  await executions.update(executionId, { state, phase: 'failed', error });
  return { state, error };
});
