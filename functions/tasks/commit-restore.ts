/**
 * Restore step Commit: records the runner's RestoreResult on the execution. After an in-place
 * restore it also ends the VM's increment chain (its disks no longer hold the chain's bitmaps,
 * so the next backup must be a FULL) and gives the VM's lock back. Idempotent.
 */
import { z } from 'zod';
import { RestoreResult } from '#core/contracts/tasks.ts';
import { executions } from '../repo/executions.ts';
import { isConditionFailed } from '../repo/table.ts';
import { heldBy, vms } from '../repo/vms.ts';
import { StepInput, step } from './common.ts';

export const CommitRestoreInput = StepInput.extend({
  host: RestoreResult,
  // The Admit output: only what Commit needs (an in-place restore's VM).
  admit: z
    .looseObject({ task: z.looseObject({ vmId: z.number(), inPlace: z.unknown().optional() }) })
    .optional(),
});

export const handler = step('CommitRestore', CommitRestoreInput, async (input) => {
  const bytes = input.host.disks.reduce((sum, d) => sum + d.size, 0);
  await executions.update(input.executionId, {
    phase: 'done',
    bytesDone: bytes,
    bytesTotal: bytes,
    'params.result': input.host,
  });
  const task = input.admit?.task;
  if (task?.inPlace) {
    try {
      await vms.update(
        task.vmId,
        {},
        {
          remove: [
            'lock',
            'backups.BACKUP_CONFIG.INCREMENTAL_BACKUP_ID',
            'backups.BACKUP_CONFIG.LAST_INCREMENT_ID',
          ],
          condition: heldBy(input.executionId),
        },
      );
    } catch (err) {
      // Already committed (a retry), or the VM is gone.
      if (!isConditionFailed(err)) throw err;
    }
  }
  return {
    disks: input.host.disks.map((d) => d.path),
    templatePath: input.host.templatePath,
    domain: input.host.domain,
  };
});
