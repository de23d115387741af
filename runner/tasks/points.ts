/**
 * Reading the stored points of an increment chain back onto the host, per disk: what a restore
 * of a chain point and a flatten both do first. Which disk driver writes a disk's point back is
 * read from its stored file names (`DiskDriver.describeArtifact`).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import type { TaskPoint } from '#core/contracts/tasks.ts';
import { ValidationError } from '#core/errors.ts';
import type { DatastoreDriver, DatastoreTarget } from '#drivers/datastore/driver.ts';
import type { DiskDriver, PointFile, RestoredDisk } from '#drivers/disk/driver.ts';
import { driverForArtifact } from '#drivers/disk/registry.ts';
import type { TaskContext } from './context.ts';

type Point = z.infer<typeof TaskPoint>;

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
          return [d.id, { path, name: d.file }];
        }),
      ),
    );
  }
  return downloaded;
}

/**
 * The disk driver that wrote disk `diskId` of a chain: the one that reads its FULL's stored name.
 * Every point of the chain must be that driver's too.
 */
export function pointDriver(
  drivers: readonly DiskDriver[],
  points: readonly Pick<Point, 'disks'>[],
  diskId: number,
): DiskDriver {
  const names = points.map((point, index) => {
    const file = point.disks.find((d) => d.id === diskId);
    if (!file) throw new ValidationError(`point ${index} of the chain has no file for disk ${diskId}`);
    return file.file;
  });
  const driver = driverForArtifact(drivers, names[0] as string);
  for (const name of names.slice(1)) {
    if (driver.describeArtifact(name) === null)
      throw new ValidationError(`backup file "${name}" is not a ${driver.name} increment of disk ${diskId}`);
  }
  return driver;
}

/**
 * Writes disk `diskId` as of the last downloaded point into a checked disk file at `toPath`,
 * through `disk.restorePoint` (which checks the untrusted files first). Restore, in-place restore
 * and flatten all write points here.
 */
export function mergePoints(
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
  if (files.length === 0) throw new ValidationError('a chain needs its FULL backup');
  return disk.restorePoint(files, toPath, { signal });
}
