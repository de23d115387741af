/**
 * Any operation, last step (Release on success, ReleaseFailed after MarkFailed): ends the
 * operation through endOperation (functions/operations/end.ts): its marks undone, the execution
 * ended (SUCCEEDED unless MarkFailed already ended it), its slot given back exactly once, a
 * backup job moved on, and the dispatcher woken so a queued operation can take the slot.
 */

import { z } from 'zod';
import { endOperation } from '../operations/end.ts';
import { executions } from '../repo/executions.ts';
import { describeFailure, StepInput, step } from './common.ts';

export const ReleaseInput = StepInput.extend({
  /** The caught error (`$.error`): present on the failure path (ReleaseFailed). */
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

export const handler = step('Release', ReleaseInput, async (input) => {
  const { executionId } = input;
  const execution = await executions.get(executionId);
  const endedAt = execution.endedAt ?? new Date().toISOString();
  let state = execution.state;
  let error: { name: string; message: string } | undefined;
  if (state === 'RUNNING' || state === 'QUEUED') {
    // Still running here means success, unless MarkFailed broke before recording the failure.
    if (input.error) {
      state = 'FAILED';
      error = describeFailure(input.error);
    } else state = 'SUCCEEDED';
  }
  await endOperation(
    execution,
    { state, endedAt, ...(error && { error }) },
    // The state input still holds the request's `jobId`: single backups cost no job lookup.
    { jobId: typeof input.jobId === 'number' ? input.jobId : undefined, wake: true },
  );
  return { state, endedAt };
});
