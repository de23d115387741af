/**
 * Disk selection and the increment-chain rules: whether the next backup of a VM with
 * MODE=INCREMENT extends its current chain or starts a new one with a FULL backup, and why.
 * An increment is only valid on top of a chain taken with the same mechanism and the same disks.
 */
import type { EffectiveConfig, IncrementMode } from './backup-config.ts';
import { effectiveConfig } from './backup-config.ts';
import { ValidationError } from './errors.ts';
import type { Disk, Image, Increment } from './model.ts';

/** Why a backup of a VM in MODE=INCREMENT starts a new chain with a FULL backup. */
export type ResetReason =
  | 'requested'
  | 'mode-changed'
  | 'disks-changed'
  | 'volatile-changed'
  | 'no-chain'
  | 'cannot-increment';

/** What the current chain was started with. */
export interface ChainState {
  /** Image id holding the chain (INCREMENTAL_BACKUP_ID). */
  imageId: number;
  incrementMode: IncrementMode;
  backupVolatile: boolean;
  /** Ids of the disks in the chain. */
  diskIds: readonly number[];
  /** Id of the chain's last increment (LAST_INCREMENT_ID): the parent of the next one. */
  lastIncrementId: number;
}

/** The decision for the next backup. */
export interface ChainDecision {
  mode: 'FULL' | 'INCREMENT';
  /** Set when MODE=INCREMENT but this backup starts a new chain; null otherwise. */
  reset: ResetReason | null;
}

/**
 * The disks to back up: volatile disks only with BACKUP_VOLATILE=YES, and only those DISK_IDS
 * names when set. Throws ValidationError when DISK_IDS names a disk the VM lacks, or when
 * nothing is left to back up.
 */
export function selectDisks<D extends Pick<Disk, 'id' | 'volatile'>>(
  disks: readonly D[],
  config: EffectiveConfig,
): D[] {
  if (config.diskIds !== null) {
    const have = new Set(disks.map((d) => d.id));
    const missing = config.diskIds.filter((id) => !have.has(id));
    if (missing.length > 0) {
      throw new ValidationError(
        `DISK_IDS names disk ${missing.join(', ')}, which the VM does not have (disks: ${
          disks.map((d) => d.id).join(', ') || 'none'
        })`,
      );
    }
  }
  const wanted = config.diskIds === null ? null : new Set(config.diskIds);
  const selected = disks.filter(
    (d) => (wanted === null || wanted.has(d.id)) && (config.backupVolatile || !d.volatile),
  );
  if (selected.length === 0) {
    throw new ValidationError(
      config.backupVolatile
        ? 'no disk to back up: the VM has no disks selected by DISK_IDS'
        : 'no disk to back up: every selected disk is volatile and BACKUP_VOLATILE is NO',
    );
  }
  return selected;
}

/** Whether every one of these disks supports incremental backups (MODE=INCREMENT needs it). */
export function canIncrement(disks: readonly Pick<Disk, 'canIncrement'>[]): boolean {
  return disks.length > 0 && disks.every((d) => d.canIncrement);
}

/**
 * The chain state recorded on an image, or null when the image cannot be extended: not an
 * INCREMENT image, not READY, empty, or written before images recorded their BACKUP_CONFIG.
 */
export function chainStateOf(image: Image): ChainState | null {
  if (image.mode !== 'INCREMENT' || image.state !== 'READY' || image.backupConfig === undefined) return null;
  const last = image.increments.reduce<number | null>(
    (max, i) => (max === null || i.id > max ? i.id : max),
    null,
  );
  if (last === null) return null;
  const config = effectiveConfig(image.backupConfig);
  return {
    imageId: image.id,
    incrementMode: config.incrementMode,
    backupVolatile: config.backupVolatile,
    diskIds: image.disks.map((d) => d.id),
    lastIncrementId: last,
  };
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  const sa = [...new Set(a)].sort((x, y) => x - y);
  const sb = [...new Set(b)].sort((x, y) => x - y);
  return sa.length === sb.length && sa.every((v, i) => v === sb[i]);
}

/**
 * FULL or INCREMENT for the next backup. MODE=FULL is always FULL with no reset (a full backup
 * is not part of a chain). With MODE=INCREMENT the first matching reason, in this order, makes
 * it a FULL starting a new chain: a disk cannot increment, a reset was requested, there is no
 * chain, INCREMENT_MODE changed, BACKUP_VOLATILE changed, the selected disks changed.
 */
export function decideChain(input: {
  config: EffectiveConfig;
  /** The disks selected for this backup ({@link selectDisks}). */
  disks: readonly Pick<Disk, 'id' | 'canIncrement'>[];
  chain: ChainState | null;
  reset: boolean;
}): ChainDecision {
  const { config, disks, chain, reset } = input;
  if (config.mode === 'FULL') return { mode: 'FULL', reset: null };
  const full = (reason: ResetReason): ChainDecision => ({ mode: 'FULL', reset: reason });
  if (!canIncrement(disks)) return full('cannot-increment');
  if (reset) return full('requested');
  if (chain === null) return full('no-chain');
  if (chain.incrementMode !== config.incrementMode) return full('mode-changed');
  if (chain.backupVolatile !== config.backupVolatile) return full('volatile-changed');
  if (
    !sameIds(
      chain.diskIds,
      disks.map((d) => d.id),
    )
  ) {
    return full('disks-changed');
  }
  return { mode: 'INCREMENT', reset: null };
}

/** One stored backup of a restore point: its driver id and its file per disk. */
export interface PointBackup {
  backupId: string;
  disks: { id: number; file: string }[];
}

/**
 * The backups a restore of `image` up to increment `incrementId` reads: the chain's FULL, then
 * each increment after it up to that point, oldest first, each with the files of `diskIds`.
 * Without `incrementId`, the latest point. A FULL image (no chain) is its one backup.
 * Throws ValidationError naming the restore points when `incrementId` is not one of them.
 */
export function restoreChain(
  image: Pick<Image, 'id' | 'source' | 'disks' | 'increments'>,
  diskIds: readonly number[],
  incrementId?: number,
): { full: PointBackup; increments: PointBackup[]; incrementId: number | null } {
  const filesOf = (
    point: { disks?: { id: number; file: string }[] } | undefined,
    fallback: (id: number) => string,
  ) => diskIds.map((id) => ({ id, file: point?.disks?.find((d) => d.id === id)?.file ?? fallback(id) }));
  const imageFile = (id: number) => image.disks.find((d) => d.id === id)?.file ?? `disk.${id}`;
  if (image.increments.length === 0) {
    if (incrementId !== undefined) {
      throw new ValidationError(`incrementId: image ${image.id} is a FULL backup, it has no increments`);
    }
    return {
      full: { backupId: image.source, disks: filesOf(undefined, imageFile) },
      increments: [],
      incrementId: null,
    };
  }
  const points = [...image.increments].sort((a, b) => a.id - b.id);
  const wanted = incrementId ?? (points.at(-1) as Increment).id;
  const end = points.findIndex((p) => p.id === wanted);
  if (end === -1) {
    throw new ValidationError(
      `incrementId: ${wanted} is not a restore point of image ${image.id} (points: ${points.map((p) => p.id).join(', ')})`,
    );
  }
  const [base, ...rest] = points.slice(0, end + 1) as [Increment, ...Increment[]];
  return {
    full: { backupId: base.source, disks: filesOf(base, imageFile) },
    increments: rest.map((p) => ({
      backupId: p.source,
      disks: filesOf(p, (id) => `disk.${id}.inc${p.id}.qcow2`),
    })),
    incrementId: wanted,
  };
}
