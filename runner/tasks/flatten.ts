/**
 * `flatten` (KEEP_LAST on an increment chain): the chain's FULL and its increments up to the new
 * base are read back and merged per disk (by the disk driver that wrote them) into one file in the
 * work folder, which is stored as a
 * new backup with the chain's template. The old backups stay: the control plane removes them
 * once the new base is recorded, so a crash at any step leaves a restorable chain.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FlattenResult, FlattenTask } from '#core/contracts/tasks.ts';
import type { TaskContext } from './context.ts';
import { downloadPoints, mergePoints, pointDriver } from './points.ts';

export async function runFlatten(task: FlattenTask, ctx: TaskContext): Promise<FlattenResult> {
  const store = ctx.drivers.datastore(task.datastore.driver);
  const target = await ctx.target(task.datastore);

  ctx.progress.phase('downloading');
  const downloaded = await downloadPoints(
    store,
    target,
    task.vmId,
    task.points,
    join(ctx.workDir, 'points'),
    ctx,
  );

  ctx.progress.phase('merging');
  const mergedDir = join(ctx.workDir, 'merged');
  await mkdir(mergedDir, { recursive: true, mode: 0o700 });
  const diskIds = task.points[0]?.disks.map((d) => d.id) ?? [];
  const merged: { id: number; name: string; path: string; virtualSize: number }[] = [];
  for (const id of diskIds) {
    const disk = pointDriver(ctx.drivers.disks(), task.points, id);
    const name = disk.flattenedName(id);
    const out = await mergePoints(disk, downloaded, id, join(mergedDir, name), ctx.signal);
    merged.push({ id, name, path: out.path, virtualSize: out.virtualSize });
  }

  ctx.progress.phase('uploading');
  const output = await store.backup(
    target,
    {
      vmId: task.vmId,
      imageId: task.imageId,
      files: merged.map((m) => ({ name: m.name, source: { kind: 'file', path: m.path } })),
      template: task.template,
    },
    { signal: ctx.signal, onProgress: (done, total) => ctx.progress.bytes(done, total) },
  );
  const sizes = new Map(output.files.map((f) => [f.name, f.size]));
  return {
    backupId: output.backupId,
    disks: merged.map((m) => ({
      id: m.id,
      file: m.name,
      size: sizes.get(m.name) ?? 0,
      virtualSize: m.virtualSize,
    })),
  };
}
