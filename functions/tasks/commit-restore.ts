/** Restore step Commit: records the runner's RestoreResult on the execution. Idempotent. */
import { RestoreResult } from '#core/contracts/tasks.ts';
import { executions } from '../repo/executions.ts';
import { StepInput, step } from './common.ts';

export const CommitRestoreInput = StepInput.extend({ host: RestoreResult });

export const handler = step('CommitRestore', CommitRestoreInput, async (input) => {
  const bytes = input.host.disks.reduce((sum, d) => sum + d.size, 0);
  await executions.update(input.executionId, {
    phase: 'done',
    bytesDone: bytes,
    bytesTotal: bytes,
    'params.result': input.host,
  });
  return { disks: input.host.disks.map((d) => d.path), templatePath: input.host.templatePath };
});
