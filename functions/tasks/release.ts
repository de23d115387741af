/**
 * Any operation, last step: ends the execution (SUCCEEDED unless MarkFailed already ended it),
 * gives its slot back exactly once (the `released` flag and both counters change in one
 * transaction), moves a backup job on, and wakes the dispatcher so a queued operation can take
 * the slot.
 */

import { jobBackupEnded } from '../dispatcher/job-progress.ts';
import { releaseExecution } from '../dispatcher/release-slot.ts';
import { executions } from '../repo/executions.ts';
import { wakeDispatcher } from '../wake.ts';
import { StepInput, step } from './common.ts';

export const handler = step('Release', StepInput, async (input) => {
  const { executionId } = input;
  const execution = await executions.get(executionId);
  const endedAt = execution.endedAt ?? new Date().toISOString();
  const state = execution.state === 'RUNNING' ? 'SUCCEEDED' : execution.state;
  if (!execution.released && (await releaseExecution(execution, { state, endedAt }))) {
    // Only the releaser moves the job on, so a retried Release never queues a VM twice. The
    // state input still holds the request's `jobId`: single backups cost no job lookup.
    if (typeof input.jobId === 'number') await jobBackupEnded(execution, state, input.jobId);
  }
  await wakeDispatcher(`execution ${executionId} ended`);
  return { state, endedAt };
});
