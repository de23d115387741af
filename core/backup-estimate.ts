/**
 * What a backup will add to its datastore, estimated before it is queued: the one estimate the
 * datastore-capacity check (FREE) and the quotas (SIZE, IMAGES) both admit a backup with, and
 * the capacity check's rule. Pure.
 */
import { type EffectiveConfig, effectiveConfig, underDefaults } from './backup-config.ts';
import { canIncrement, selectDisks } from './chain.ts';
import { ValidationError } from './errors.ts';
import type { BackupConfigRecord, Datastore, Disk, Vm } from './model.ts';

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

/** A backup as admission sees it before it is queued. */
export interface BackupEstimate {
  /** The kind Admit will most likely take. */
  kind: 'FULL' | 'INCREMENT';
  /** The disks it backs up (DISK_IDS and volatile ones applied). */
  diskIds: readonly number[];
  /** Bytes it may add to its datastore ({@link estimateBackupBytes}). */
  bytes: number;
}

/** What queueing knows of the request: its reset and the job's BACKUP_CONFIG defaults. */
export interface EstimatedRequest {
  reset: boolean;
  jobConfig?: BackupConfigRecord;
}

/**
 * The backup Admit will most likely take of `vm`, decided without reading the chain's image:
 * an INCREMENT when MODE asks for one (the job's config under the VM's own), no reset is asked
 * (the request's or the job's RESET), its disks can increment and a chain is recorded
 * (INCREMENTAL_BACKUP_ID); else a FULL. Admit may still decide otherwise (a chain on another
 * datastore, one it cannot follow): Commit settles the quota with the real size. Null when the
 * config selects no disk or is corrupt: Admit refuses that backup, with the reason.
 */
export function estimateBackup(
  vm: Pick<Vm, 'disks' | 'backups'>,
  request: EstimatedRequest,
): BackupEstimate | null {
  const record = request.jobConfig
    ? underDefaults(vm.backups.BACKUP_CONFIG, request.jobConfig)
    : vm.backups.BACKUP_CONFIG;
  let config: EffectiveConfig;
  let disks: Disk[];
  try {
    config = effectiveConfig(record);
    disks = selectDisks(vm.disks, config);
  } catch (err) {
    if (err instanceof ValidationError) return null;
    throw err;
  }
  const reset = request.reset || request.jobConfig?.RESET === 'YES';
  // As Admit reads it: an empty id is no chain.
  const chained = (record.INCREMENTAL_BACKUP_ID ?? '') !== '';
  const kind = config.mode === 'INCREMENT' && !reset && chained && canIncrement(disks) ? 'INCREMENT' : 'FULL';
  return { kind, diskIds: disks.map((d) => d.id), bytes: estimateBackupBytes(disks, kind) };
}

/**
 * Why a backup estimated at `estimate` does not fit in the datastore's last measured FREE, or
 * undefined when it does. FREE unknown (never measured, or a driver that cannot know it)
 * refuses nothing.
 */
export function roomProblem(
  datastore: Pick<Datastore, 'id' | 'freeBytes' | 'monitoredAt'>,
  vmId: number,
  estimate: BackupEstimate,
): string | undefined {
  const free = datastore.freeBytes;
  if (free === undefined || estimate.bytes <= free) return undefined;
  const when = datastore.monitoredAt ? ` (measured ${datastore.monitoredAt})` : '';
  return (
    `datastore ${datastore.id} has ${toMiB(free)} MiB free${when}; the ${estimate.kind} backup ` +
    `of VM ${vmId} (disks ${estimate.diskIds.join(', ') || 'none'}) needs about ` +
    `${toMiB(estimate.bytes)} MiB (${estimate.bytes} bytes, ${free} free)`
  );
}
