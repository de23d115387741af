/**
 * Backup step Commit: records the runner's result (`$.host`, a BackupResult): the image READY
 * with its source, disks, size and template (or the new increment appended to its chain), the
 * image id in the VM's BACKUP_IDS, the runtime BACKUP_CONFIG keys, and the VM unlocked.
 * Idempotent: a retry finds the image already committed and the lock already gone.
 */
import { setRuntime } from '#core/backup-config.ts';
import { BackupResult } from '#core/contracts/tasks.ts';
import { Conflict } from '#core/errors.ts';
import type { Image, Increment } from '#core/model.ts';
import { executions } from '../repo/executions.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { heldBy, vms } from '../repo/vms.ts';
import { StepInput, step } from './common.ts';

export const CommitBackupInput = StepInput.extend({ host: BackupResult });

/** The image after the result, and the size this backup added. */
export function committedImage(
  image: Image,
  result: BackupResult,
  now: string,
): { image: Image; added: number } {
  const added = result.disks.reduce((sum, d) => sum + d.size, 0);
  if (image.increments.some((i) => i.source === result.backupId) || image.source === result.backupId) {
    return { image, added: 0 };
  }
  if (result.increment && image.increments.length > 0) {
    const increment: Increment = {
      id: result.increment.id,
      parent: result.increment.parent ?? undefined,
      type: 'INCREMENT',
      source: result.backupId,
      size: added,
      date: now,
    };
    return {
      image: {
        ...image,
        state: 'READY',
        size: image.size + added,
        increments: [...image.increments, increment],
      },
      added,
    };
  }
  const disks = result.disks.map((d) => ({
    id: d.id,
    size: d.size,
    virtualSize: d.virtualSize,
    format: d.format,
    file: d.file,
  }));
  // A FULL in MODE=INCREMENT opens a chain: it is increment 0 of its image.
  const increments: Increment[] =
    image.mode === 'INCREMENT'
      ? [{ id: result.increment?.id ?? 0, type: 'FULL', source: result.backupId, size: added, date: now }]
      : [];
  return {
    image: {
      ...image,
      state: 'READY',
      source: result.backupId,
      disks,
      size: added,
      template: result.template,
      increments,
    },
    added,
  };
}

export const handler = step('CommitBackup', CommitBackupInput, async (input) => {
  const { executionId, host: result } = input;
  const execution = await executions.get(executionId);
  await executions.update(executionId, { phase: 'committing' });
  if (execution.imageId === undefined || execution.vmId === undefined) {
    throw new Conflict(`execution ${executionId} has no image or VM to commit`);
  }
  const now = new Date().toISOString();
  const current = await images.get(execution.imageId);
  const { image } = committedImage(current, result, now);
  if (image !== current) await images.put({ ...image, executionId });

  const vm = await vms.get(execution.vmId);
  const chained = image.mode === 'INCREMENT';
  const lastIncrement = image.increments.at(-1)?.id ?? null;
  const config = setRuntime(vm.backups.BACKUP_CONFIG, {
    LAST_DATASTORE_ID: null,
    LAST_BACKUP_ID: null,
    LAST_BACKUP_SIZE: null,
    INCREMENTAL_BACKUP_ID: chained ? image.id : null,
    LAST_INCREMENT_ID: chained ? lastIncrement : null,
  });
  const ids = vm.backups.BACKUP_IDS.includes(image.id)
    ? vm.backups.BACKUP_IDS
    : [...vm.backups.BACKUP_IDS, image.id];
  try {
    // One conditional write: BACKUP_IDS, config and unlock happen together, only while we hold the lock.
    await vms.update(
      vm.id,
      { 'backups.BACKUP_IDS': ids, 'backups.BACKUP_CONFIG': config },
      { remove: ['lock'], condition: heldBy(executionId) },
    );
  } catch (err) {
    // Lock already released: a previous attempt of this step committed the VM.
    if (!isConditionFailed(err)) throw err;
  }
  await executions.update(executionId, { phase: 'done', bytesDone: image.size, bytesTotal: image.size });
  return { imageId: image.id, backupId: result.backupId, size: image.size };
});
