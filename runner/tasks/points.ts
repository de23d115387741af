/**
 * Reading the stored points of an increment chain back onto the host, and merging them per disk:
 * what a restore of a chain point and a flatten both do first.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import type { TaskPoint } from '#core/contracts/tasks.ts';
import { ValidationError } from '#core/errors.ts';
import type { DatastoreDriver, DatastoreTarget } from '#drivers/datastore/driver.ts';
import type { DiskDriver, RestoredDisk } from '#drivers/disk/driver.ts';
import { checkStoredImage } from '#drivers/disk/qcow2-header.ts';
import type { TaskContext } from './context.ts';

type Point = z.infer<typeof TaskPoint>;

/** Stored format of a backup file, from its name (`disk.0.raw`, `disk.1.qcow2`). */
export function storedFormat(file: string): 'qcow2' | 'raw' {
  if (file.endsWith('.qcow2')) return 'qcow2';
  if (file.endsWith('.raw')) return 'raw';
  throw new ValidationError(`backup file "${file}" is neither .raw nor .qcow2`);
}

/** One downloaded file of a point. */
export interface PointFile {
  path: string;
  format: 'qcow2' | 'raw';
}

/**
 * Downloads every point (the FULL first, then its increments) into its own folder under `dir`;
 * answers, per point, the local file of each disk.
 */
export async function downloadPoints(
  store: DatastoreDriver,
  target: DatastoreTarget,
  vmId: number,
  points: readonly Point[],
  dir: string,
  ctx: Pick<TaskContext, 'signal' | 'progress'>,
): Promise<Map<number, PointFile>[]> {
  const downloaded: Map<number, PointFile>[] = [];
  for (const [index, point] of points.entries()) {
    const toDir = join(dir, String(index));
    await mkdir(toDir, { recursive: true, mode: 0o700 });
    const files = await store.restore(
      target,
      { vmId, backupId: point.backupId, files: point.disks.map((d) => d.file), toDir },
      { signal: ctx.signal, onProgress: (done, total) => ctx.progress.bytes(done, total) },
    );
    const byName = new Map(files.map((f) => [f.name, f.path]));
    downloaded.push(
      new Map(
        point.disks.map((d) => {
          const path = byName.get(d.file);
          if (!path)
            throw new ValidationError(`the datastore did not restore ${d.file} of ${point.backupId}`);
          return [d.id, { path, format: storedFormat(d.file) }];
        }),
      ),
    );
  }
  return downloaded;
}

/**
 * Writes disk `diskId` as of the last downloaded point into a checked qcow2 at `toPath`: the
 * FULL converted alone, or the increments rebased onto it (see `DiskDriver.restoreChain`). An
 * increment's backing file (the live disk at backup time) is never opened: it is replaced by
 * the chain's previous file. A FULL with a backing file, or any file with an external data file,
 * is refused (UnsafeDiskImage) before any qemu-img call. Restore and flatten both merge here.
 */
export async function mergePoints(
  disk: DiskDriver,
  downloaded: readonly Map<number, PointFile>[],
  diskId: number,
  toPath: string,
  signal: AbortSignal,
): Promise<RestoredDisk> {
  const files = downloaded.map((point, index) => {
    const file = point.get(diskId);
    if (!file) throw new ValidationError(`point ${index} of the chain has no file for disk ${diskId}`);
    return file;
  });
  const [full, ...increments] = files;
  if (!full) throw new ValidationError('a chain needs its FULL backup');
  // Downloaded files are untrusted, whatever disk driver merges them: no external data file
  // anywhere, no backing file on the FULL (the driver checks again where qemu-img opens them).
  await checkStoredImage(full.path, full.format, 'full');
  for (const file of increments) await checkStoredImage(file.path, file.format, 'increment');
  if (files.length === 1) return disk.restoreDisk(full.path, full.format, toPath, { signal });
  if (!disk.restoreChain) throw new ValidationError(`the ${disk.name} disk driver cannot restore increments`);
  return disk.restoreChain(files, toPath, { signal });
}
