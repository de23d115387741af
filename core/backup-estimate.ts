/**
 * How many bytes a backup will add to its datastore, estimated before it is queued: the one
 * figure the datastore-capacity check and the quotas both admit a backup with. Pure.
 */
import type { Disk } from './model.ts';

/** What the estimate needs of a disk. */
export type EstimatedDisk = Pick<Disk, 'size' | 'allocated' | 'dirty'>;

/**
 * Bytes a backup of `disks` (already selected: volatile ones and DISK_IDS applied) may write.
 * A full backup writes what each disk holds (its allocation, else its virtual size, never
 * less than it could be); an increment writes the changed bytes when the inventory knows them,
 * else as much as a full.
 */
export function estimateBackupBytes(disks: readonly EstimatedDisk[], kind: 'FULL' | 'INCREMENT'): number {
  return disks.reduce((sum, d) => sum + diskEstimate(d, kind), 0);
}

function diskEstimate(disk: EstimatedDisk, kind: 'FULL' | 'INCREMENT'): number {
  const full = disk.allocated ?? disk.size;
  if (kind === 'INCREMENT' && disk.dirty !== undefined) return Math.min(disk.dirty, full);
  return full;
}

/** The estimate in whole MiB, rounded up (quotas count MiB, as OpenNebula's SIZE). */
export function toMiB(bytes: number): number {
  return Math.ceil(bytes / (1024 * 1024));
}
