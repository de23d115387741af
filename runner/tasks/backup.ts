/**
 * `backup`: the disk driver makes the VM's disks stable (snapshot or lock, with the freeze the
 * BACKUP_CONFIG asks for; with MODE=INCREMENT a checkpoint (CBT) or a tracking overlay
 * (SNAPSHOT), and for an increment only the changed blocks), the datastore driver streams them and the template into a new backup, and the
 * disk driver gives the VM its disks back, in a `finally` so that happens even when the upload
 * fails or is aborted.
 *
 * Verify after every backup: the datastore driver computes each disk's sha256 as it streams and
 * reads the stored disks back before it marks the backup complete (phase `verifying`, while the
 * disks are still held: a failed verification is a failed upload, and a SNAPSHOT point is undone
 * so the same increment can be tried again). The answer carries each disk's sha256 and
 * `verifiedAt`; a mismatch fails the task with `BackupVerifyFailed` naming the disk. The start of
 * the read-back is logged ({@link VERIFYING_MESSAGE}), so its duration can be told from the log
 * and `verifiedAt` (bench/lifeboat.ts times it so).
 */
import type { BackupResult, BackupTask } from '#core/contracts/tasks.ts';
import type { DiskDriver, PreparedBackup, PrepareOptions } from '#drivers/disk/driver.ts';
import { ChainBroken } from '#drivers/disk/errors.ts';
import { disksByDriver, prepareDisks } from './backup-mixed.ts';
import type { TaskContext } from './context.ts';
import { EarlyUpload, type StartUpload } from './early-upload.ts';

/** The info line a backup logs as its read-back starts (phase `verifying`), with the disk count. */
export const VERIFYING_MESSAGE = 'verifying stored backup';

export async function runBackup(task: BackupTask, ctx: TaskContext): Promise<BackupResult> {
  const started = Date.now();
  const store = ctx.drivers.datastore(task.datastore.driver);
  const target = await ctx.target(task.datastore);

  ctx.progress.phase('preparing');
  let total = 0;
  const upload: StartUpload = (files, template) =>
    store.backup(
      target,
      { vmId: task.vm.id, imageId: task.imageId, files, template },
      {
        signal: ctx.signal,
        onProgress: (done, all) => ctx.progress.bytes(done, all || total),
        onVerifying: () => {
          ctx.log('info', VERIFYING_MESSAGE, { disks: files.length });
          ctx.progress.phase('verifying');
        },
        // The template (restic) or the sums and marker (rsync) are stored after the read-back.
        onVerified: () => ctx.progress.phase('completing'),
      },
    );
  // One driver: the datastore opens its repository while the disks are made stable
  // (early-upload.ts). Several drivers hand their files over only once all are prepared.
  const oneDriver = disksByDriver(task, ctx).size <= 1;
  const early = store.readsEarly && oneDriver ? new EarlyUpload(upload) : undefined;
  let preparing: Awaited<ReturnType<typeof prepare>>;
  try {
    // Disks of several drivers (files and rbd): each driver its own, under one freeze (backup-mixed.ts).
    preparing = await prepareDisks(task, ctx, (part, disk, workDir) =>
      prepare(part, disk, !store.readsNbd, { ...ctx, workDir }, early?.onFiles),
    );
  } catch (error) {
    await early?.cancel(error);
    throw error;
  }
  const { prepared, increment, chainReset } = preparing;
  let output: Awaited<ReturnType<typeof store.backup>>;
  try {
    ctx.progress.phase('uploading');
    total = prepared.files.reduce((sum, f) => sum + f.virtualSize, 0);
    ctx.progress.bytes(0, total);
    output = await ((await early?.take(prepared)) ??
      upload(
        prepared.files.map((f) => ({ name: f.name, source: f.source })),
        prepared.template,
      ));
  } catch (error) {
    ctx.progress.phase('releasing');
    // The upload's error is the one to report; a failed release is left to Cleanup's reconcile.
    // `failed`: a SNAPSHOT point not stored is undone, so the same increment can be tried again.
    await prepared.release({ failed: true }).catch((releaseError: unknown) => {
      ctx.log('error', 'release after a failed backup failed', { error: (releaseError as Error).message });
    });
    throw error;
  }
  ctx.progress.phase('releasing');
  await prepared.release();
  const stored = new Map(output.files.map((f) => [f.name, f]));
  return {
    backupId: output.backupId,
    disks: prepared.files.map((f) => {
      const sha256 = stored.get(f.name)?.sha256;
      return {
        id: f.diskId,
        size: stored.get(f.name)?.size ?? 0,
        virtualSize: f.virtualSize,
        format: f.format,
        file: f.name,
        ...(sha256 ? { sha256 } : {}),
      };
    }),
    ...(output.verifiedAt ? { verifiedAt: output.verifiedAt } : {}),
    increment,
    chainReset,
    template: prepared.template,
    durationMs: Date.now() - started,
  };
}

/**
 * Prepares the disks: a plain FULL (MODE=FULL), a chain start, or an increment. An increment
 * whose parent cannot be followed becomes a FULL starting a new chain, with the reason: never a
 * wrong increment.
 */
async function prepare(
  task: BackupTask,
  disk: DiskDriver,
  fileSources: boolean,
  ctx: TaskContext,
  onFiles?: PrepareOptions['onFiles'],
): Promise<{ prepared: PreparedBackup; increment: BackupResult['increment']; chainReset: string | null }> {
  const base: PrepareOptions = {
    freeze: task.config.FS_FREEZE,
    workDir: ctx.workDir,
    signal: ctx.signal,
    fileSources,
    onFiles,
  };
  const inc = task.increment;
  if (!inc)
    return {
      prepared: await disk.prepareBackup(task.vm, task.disks, base),
      increment: null,
      chainReset: null,
    };
  const point = (parent: string | null) => ({
    checkpoint: inc.checkpoint,
    parent,
    index: inc.id,
    mode: task.config.INCREMENT_MODE,
  });
  try {
    const prepared = await disk.prepareBackup(task.vm, task.disks, {
      ...base,
      increment: point(inc.parentCheckpoint),
    });
    return {
      prepared,
      increment: { id: inc.id, parent: inc.parent, checkpoint: inc.checkpoint },
      chainReset: null,
    };
  } catch (error) {
    if (!(error instanceof ChainBroken) || inc.parentCheckpoint === null) throw error;
    ctx.log('warn', 'increment cannot follow its parent: starting a new chain with a FULL backup', {
      vmId: task.vm.id,
      reason: error.message,
    });
    const prepared = await disk.prepareBackup(task.vm, task.disks, { ...base, increment: point(null) });
    return {
      prepared,
      increment: { id: 0, parent: null, checkpoint: inc.checkpoint },
      chainReset: error.message,
    };
  }
}
