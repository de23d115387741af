/**
 * The datastore's own operations, each one driver call: `rm` (remove a backup), `monitor`
 * (capacity), `stat` (restored size of each file), `download` (one file to a host path) and
 * `verify` (read the data back and check it).
 */
import type { DownloadTask, MonitorTask, RmTask, StatTask, VerifyTask } from '#core/contracts/tasks.ts';
import type { Capacity, StoredFile } from '#drivers/datastore/driver.ts';
import type { TaskContext } from './context.ts';

export async function runRm(task: RmTask, ctx: TaskContext): Promise<{ removed: true }> {
  ctx.progress.phase('removing');
  const target = await ctx.target(task.datastore);
  await ctx.drivers
    .datastore(task.datastore.driver)
    .rm(target, { vmId: task.vmId, backupId: task.backupId }, { signal: ctx.signal });
  return { removed: true };
}

export async function runMonitor(task: MonitorTask, ctx: TaskContext): Promise<Capacity> {
  const target = await ctx.target(task.datastore);
  const { totalBytes, freeBytes, usedBytes } = await ctx.drivers
    .datastore(task.datastore.driver)
    .monitor(target, { signal: ctx.signal });
  return { totalBytes, freeBytes, usedBytes };
}

export async function runStat(task: StatTask, ctx: TaskContext): Promise<{ files: StoredFile[] }> {
  const target = await ctx.target(task.datastore);
  const files = await ctx.drivers
    .datastore(task.datastore.driver)
    .stat(target, { vmId: task.vmId, backupId: task.backupId }, { signal: ctx.signal });
  return { files: files.map(({ name, size }) => ({ name, size })) };
}

export async function runDownload(
  task: DownloadTask,
  ctx: TaskContext,
): Promise<{ path: string; size: number }> {
  ctx.progress.phase('downloading');
  const target = await ctx.target(task.datastore);
  const { size } = await ctx.drivers
    .datastore(task.datastore.driver)
    .download(
      target,
      { vmId: task.vmId, backupId: task.backupId, file: task.file, toPath: task.toPath },
      { signal: ctx.signal, onProgress: (done, total) => ctx.progress.bytes(done, total) },
    );
  return { path: task.toPath, size };
}

export async function runVerify(task: VerifyTask, ctx: TaskContext): Promise<{ verified: true }> {
  ctx.progress.phase('verifying');
  const target = await ctx.target(task.datastore);
  await ctx.drivers
    .datastore(task.datastore.driver)
    .verify(target, { vmId: task.vmId, backupId: task.backupId }, { signal: ctx.signal });
  return { verified: true };
}
