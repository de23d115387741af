/**
 * The datastore's own operations, each one driver call: `rm` (remove a backup), `monitor`
 * (capacity), `stat` (restored size of each file), `download` (one file to a host path) and
 * `verify` (read the data back and check it), `catalog` (every backup the datastore holds).
 */
import { rm } from 'node:fs/promises';
import type {
  CatalogResult,
  CatalogTask,
  DownloadTask,
  MonitorTask,
  RmTask,
  StatTask,
  VerifyTask,
} from '#core/contracts/tasks.ts';
import type { Capacity, StoredFile } from '#drivers/datastore/driver.ts';
import { commitFile, createFolders, createPartial, PRIVATE_FOLDER_MODE, resolveFile } from '../confine.ts';
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

/**
 * Writes the file where `toPath` says, confined (`runner/confine.ts`): checked before anything
 * else (no secret resolved, nothing read, nothing written when refused), folders created 0700,
 * the driver writing into an exclusive 0600 partial that is then linked to the final name.
 */
export async function runDownload(
  task: DownloadTask,
  ctx: TaskContext,
): Promise<{ path: string; size: number }> {
  const place = await resolveFile(task.toPath, { roots: ctx.restoreRoots, confined: task.confine });
  ctx.progress.phase('downloading');
  const target = await ctx.target(task.datastore);
  await createFolders(place, PRIVATE_FOLDER_MODE);
  const partial = await createPartial(place.path);
  try {
    const { size } = await ctx.drivers
      .datastore(task.datastore.driver)
      .download(
        target,
        { vmId: task.vmId, backupId: task.backupId, file: task.file, toPath: partial },
        { signal: ctx.signal, onProgress: (done, total) => ctx.progress.bytes(done, total) },
      );
    await commitFile(partial, place.path);
    return { path: place.path, size };
  } finally {
    await rm(partial, { force: true });
  }
}

export async function runVerify(task: VerifyTask, ctx: TaskContext): Promise<{ verified: true }> {
  ctx.progress.phase('verifying');
  const target = await ctx.target(task.datastore);
  await ctx.drivers
    .datastore(task.datastore.driver)
    .verify(
      target,
      { vmId: task.vmId, backupId: task.backupId, ...(task.sums && { sums: task.sums }) },
      { signal: ctx.signal },
    );
  return { verified: true };
}

/**
 * Every complete backup the datastore holds, each distinct template once (a chain's points and
 * a VM's successive backups share theirs): the answer must fit in a task result.
 */
export async function runCatalog(task: CatalogTask, ctx: TaskContext): Promise<CatalogResult> {
  ctx.progress.phase('listing');
  const target = await ctx.target(task.datastore);
  const backups = await ctx.drivers.datastore(task.datastore.driver).catalog(target, { signal: ctx.signal });
  const templates: string[] = [];
  const index = new Map<string, number>();
  return {
    backups: backups.map(({ template, ...backup }) => {
      if (template === null) return { ...backup, template: null };
      let i = index.get(template);
      if (i === undefined) {
        i = templates.push(template) - 1;
        index.set(template, i);
      }
      return { ...backup, template: i };
    }),
    templates,
  };
}
