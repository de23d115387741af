/**
 * Any operation, last step (Release on success, ReleaseFailed after MarkFailed): ends the
 * operation through endOperation (functions/operations/end.ts): its marks undone, the execution
 * ended (SUCCEEDED unless MarkFailed already ended it), its slot given back exactly once, a
 * backup job moved on, and the dispatcher woken so a queued operation can take the slot.
 */

import { z } from 'zod';
import { endOperation, releaseCommittedBackup } from '../operations/end.ts';
import { jobBackupEnded } from '../operations/job-progress.ts';
import { executions } from '../repo/executions.ts';
import { wakeDispatcher } from '../wake.ts';
import { describeFailure, StepInput, step } from './common.ts';

/** What a backup's success path hands Release: Admit's host and Commit's size. */
const Committed = z.object({
  vmId: z.number().int(),
  datastoreId: z.number().int().optional(),
  admit: z.looseObject({ hostId: z.number().int(), task: z.looseObject({ kind: z.literal('backup') }) }),
  commit: z.looseObject({ size: z.number(), startedAt: z.string().optional() }),
});

export const ReleaseInput = StepInput.extend({
  /** The caught error (`$.error`): present on the failure path (ReleaseFailed). */
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

export const handler = step('Release', ReleaseInput, async (input) => {
  const { executionId } = input;
  const jobId = typeof input.jobId === 'number' ? input.jobId : undefined;
  const committed = input.error ? undefined : Committed.safeParse(input).data;
  if (committed) {
    // The common ending in one write; anything unusual (ended meanwhile) takes the general way.
    const endedAt = new Date().toISOString();
    const ok = await releaseCommittedBackup(executionId, committed.admit.hostId, {
      endedAt,
      size: committed.commit.size,
      datastoreId: committed.datastoreId,
      startedAt: committed.commit.startedAt,
    });
    if (ok) {
      const record = { id: executionId, vmId: committed.vmId, kind: 'backup' as const };
      if (jobId !== undefined) await jobBackupEnded(record, 'SUCCEEDED', jobId);
      await wakeDispatcher(`execution ${executionId} ended`);
      return { state: 'SUCCEEDED' as const, endedAt };
    }
  }
  const read = await executions.get(executionId);
  // Commit returned (success path): its writes already undid the marks, as a phase `done` tells.
  const execution = committed && read.phase === 'committing' ? { ...read, phase: 'done' as const } : read;
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
    { jobId, wake: true, ...(committed && { bytes: committed.commit.size }) },
  );
  return { state, endedAt };
});
