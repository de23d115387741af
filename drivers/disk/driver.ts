/**
 * How a VM's disks are made stable for a backup, handed to a datastore driver, cleaned up
 * afterwards, and written back on restore. One implementation per kind of disk (`qcow2`: file
 * disks in qcow2 or raw format; `rbd`: Ceph images), registered in `registry.ts`.
 *
 * Rules every implementation keeps:
 * - `prepareBackup` leaves the VM running as it was (a SUSPEND freeze is resumed and an AGENT
 *   freeze thawed before it returns, also when it fails), and hands out sources that do not
 *   change while the datastore reads them: guest writes made after `prepareBackup` returns never
 *   show up in them.
 * - Everything it creates on the host (overlays, snapshots, exports, lock holders, scratch
 *   files) lives in, or is recorded in, `workDir`, so that {@link DiskDriver.reconcile} of that
 *   folder alone undoes it after a crash of the runner, even with no memory of the run.
 * - `release()` gives the VM back its own disks (guest writes made during the backup kept), is
 *   idempotent, and still works when the domain was destroyed or undefined meanwhile. Base disk
 *   files are never deleted or rewritten other than by committing the guest's own writes into them.
 * - Nothing a guest wrote is ever thrown away: an overlay the domain still uses (live or in its
 *   persistent definition) is committed back before it is removed; when that fails, it is kept.
 * - When prepareBackup fails, nothing is left behind (it cleans up as `release()` would).
 * - Failures are typed: `FsFreezeFailed`, `DomainNotFound`, `DiskMismatch`,
 *   `DiskSnapshotFailed` (see `errors.ts`), otherwise ExecError.
 * - `signal` aborts the operation and kills every child process; cleanup still runs.
 * - The template is the domain's persistent XML without security info (no VNC/SPICE passwords).
 */

import type { z } from 'zod';
import type { TaskConfig, TaskDisk, TaskVm } from '#core/contracts/tasks.ts';
import type { DiskSource } from '../datastore/driver.ts';

/** A disk to back up, as the backup task names it. */
export type BackupDisk = z.infer<typeof TaskDisk>;
/** The VM of a backup task (only the domain name matters to the disk drivers). */
export type BackupVm = Pick<z.infer<typeof TaskVm>, 'id' | 'domain'>;
/** How the guest is quiesced around the snapshot (BACKUP_CONFIG FS_FREEZE). */
export type FreezeMode = z.infer<typeof TaskConfig>['FS_FREEZE'];

export interface PrepareOptions {
  freeze: FreezeMode;
  /**
   * A folder of this backup alone (created if missing), on the host, where the driver keeps its
   * overlays and records. It must be reachable by the QEMU process (libvirt-qemu needs search
   * permission on every parent folder).
   */
  workDir: string;
  signal?: AbortSignal;
  /**
   * The datastore reads files only (no NBD export): a running VM's chain start is then a
   * checkpoint followed by the usual snapshot, instead of a pull-mode NBD export.
   */
  fileSources?: boolean;
  /**
   * Told, before the disks are made stable, the files and template `prepareBackup` will hand out
   * when they are already known (a driver may never call it). They must not be read before
   * `prepareBackup` resolves: this lets the datastore start (open its repository) meanwhile.
   */
  onFiles?: (files: readonly PreparedFile[], template: string) => void;
  /**
   * Incremental chains (MODE=INCREMENT). Absent: a plain FULL, no checkpoint. With
   * `parent: null`: a FULL that starts a chain, and checkpoint `checkpoint` is created at the very
   * point in time of the backup. With a parent: an increment holding only the blocks changed
   * since checkpoint `parent`, in files whose names `describeArtifact` reads as increment N (file
   * disks: `disk.<id>.inc<N>.qcow2`, qcow2 with no backing file reference), and checkpoint
   * `checkpoint` (the driver's own mark: a libvirt checkpoint, a snapshot) for the next one. A parent that cannot be followed (checkpoint or
   * bitmap missing or inconsistent) throws `ChainBroken`: the caller starts a new FULL chain.
   */
  increment?: {
    /** Our checkpoint name, e.g. `lifeboat-<chain>-<n>`. */
    checkpoint: string;
    parent: string | null;
    /** N of the file names; defaults to the trailing number of `checkpoint`, else 1. */
    index?: number;
    /**
     * How changes are tracked (INCREMENT_MODE). `CBT` (default): checkpoints and dirty bitmaps.
     * `SNAPSHOT`: each disk runs on a persistent overlay `<disk file>.<checkpoint>.qcow2` that
     * the next increment hands out (see `snapshot-mode.ts`). Any backup other than a SNAPSHOT
     * increment first commits such an overlay back into its base.
     */
    mode?: 'CBT' | 'SNAPSHOT';
  };
}

/** One disk ready to be streamed to the datastore. */
export interface PreparedFile {
  diskId: number;
  /** File name inside the backup (`disk.<id>.<format>`), one {@link DiskDriver.describeArtifact} reads. */
  name: string;
  source: DiskSource;
  /**
   * Format of the bytes the source yields (`qcow2`, `raw`, or a driver's own stream format): it
   * is recorded with the backup, and the driver reads it back from the name (describeArtifact).
   */
  format: string;
  /** Guest-visible size in bytes. */
  virtualSize: number;
}

export interface PreparedBackup {
  files: PreparedFile[];
  /** The domain's persistent XML at backup time (references the original disk files). */
  template: string;
  /** VM state seen when the backup was prepared: a RUNNING one was snapshotted. */
  state: 'RUNNING' | 'SUSPENDED' | 'POWEROFF';
  /**
   * Undoes everything prepareBackup did (see the rules above). Safe to call more than once.
   * `failed`: the datastore did not store the backup. A SNAPSHOT backup then undoes its new
   * tracking overlays (commits them back), so the same point can be tried again; without it, the
   * backup counts as done and the chain moves on. Other modes ignore it.
   */
  release(options?: { failed?: boolean }): Promise<void>;
}

export interface RestoredDisk {
  path: string;
  format: 'qcow2';
  virtualSize: number;
  /** Bytes the file takes on disk. */
  size: number;
}

/** What a stored backup file holds, as the driver that wrote it reads its name. */
export interface StoredArtifact {
  /** The disk id its name carries; null for a name of an older shape that carries none. */
  diskId: number | null;
  /** Format of the stored bytes (what `restorePoint` is handed back). */
  format: string;
  /** N of an increment file (`disk.<id>.inc<N>.…`); null for a FULL. */
  increment: number | null;
}

/** One downloaded file of a chain point, as the datastore wrote it on the host. */
export interface PointFile {
  path: string;
  /** Its stored name (`disk.0.raw`, `disk.0.inc2.qcow2`): the driver reads what it holds from it. */
  name: string;
}

/**
 * An in-place restore under way: the disks of a shut-off domain about to be written over, as
 * this host has them (never as a task names them). Made by {@link DiskDriver.prepareInPlace}.
 */
export interface InPlaceRestore {
  /** Each disk written over: its id, what the domain has (a file path, an image name) and format. */
  readonly disks: readonly { id: number; source: string; format: string }[];
  /**
   * Readies disk `id`: `write` puts the restored point into the scratch path it is handed (with
   * `restorePoint`); the driver turns it into the disk's own form beside the disk. Nothing of the
   * VM's changes yet. Answers the disk's source and the restored size.
   */
  stage(id: number, write: (scratch: string) => Promise<RestoredDisk>): Promise<RestoredDisk>;
  /**
   * Puts every staged disk in place at once, the domain still shut off (all or none: a failure
   * puts every old disk back). Answers a line per extra action taken.
   */
  commit(): Promise<string[]>;
  /** Drops whatever is staged and not committed. Safe to call at any time. */
  discard(): Promise<void>;
}

/** A restore into a new pool image, its name checked and found free (`DiskDriver.prepareToPool`). */
export interface PoolRestore {
  /** The new image, `pool/image`. */
  image: string;
  /**
   * Writes one point of the disk (`files` as for `DiskDriver.restorePoint`; the inputs may be
   * consumed) into the image, refusing again (Conflict) an image made meanwhile. Answers the
   * image and its size. A failure leaves no image.
   */
  write(
    files: readonly PointFile[],
    options?: { signal?: AbortSignal },
  ): Promise<{ image: string; size: number }>;
}

export interface DiskDriver {
  readonly name: string;
  prepareBackup(vm: BackupVm, disks: readonly BackupDisk[], options: PrepareOptions): Promise<PreparedBackup>;
  /**
   * Undoes what an interrupted backup left in `workDir`: commits overlays the domain still runs
   * on (or is defined on) back into their base files, stops lock holders and exports, removes
   * the driver's files. `domain` is needed only when the driver's own record in `workDir` is
   * lost. An in-place restore cut short mid-swap gets the VM's old disks back. Returns a line
   * per action taken (empty when nothing was left). Idempotent. A folder with nothing of this
   * driver's in it is left as it is.
   */
  reconcile(workDir: string, domain?: string, options?: { signal?: AbortSignal }): Promise<string[]>;
  /**
   * What the stored backup file `name` holds when this driver wrote it; null when it is not one
   * of this driver's (the registry asks every driver; see `registry.ts`).
   */
  describeArtifact(name: string): StoredArtifact | null;
  /** Stored name of the FULL a flatten writes for disk `diskId` (merged from a chain). */
  flattenedName(diskId: number): string;
  /** Name of the disk file a restore to a folder writes for `base` (`<vm>-disk-<id>`). */
  restoredFileName(base: string): string;
  /**
   * Writes one point of a disk into a checked standalone disk file at `toPath`: `files` are the
   * FULL's file, then each increment's up to the point, as downloaded (untrusted: checked before
   * any tool opens them; the inputs may be consumed). Refuses to overwrite `toPath`. Restore,
   * in-place restore and flatten all write points through here.
   */
  restorePoint(
    files: readonly PointFile[],
    toPath: string,
    options?: { signal?: AbortSignal },
  ): Promise<RestoredDisk>;
  /**
   * Starts a restore of one disk into the new image `image` of Ceph pool `pool` on this host's
   * cluster; drivers whose disks are not pool images have no such method. Refuses
   * (ValidationError, Conflict) a name rbd would not take or an image that exists, before
   * anything is downloaded; see {@link PoolRestore}.
   */
  prepareToPool?(pool: string, image: string, options?: { signal?: AbortSignal }): Promise<PoolRestore>;
  /**
   * Starts an in-place restore over disks `diskIds` of the shut-off `domain`: finds them in the
   * domain's definition on this host and refuses (ValidationError, Conflict) before anything is
   * downloaded when one is missing, not this driver's kind, or left from an earlier attempt. What
   * a crash leaves mid-swap in `workDir` is put back by {@link DiskDriver.reconcile}.
   */
  prepareInPlace(
    domain: string,
    diskIds: readonly number[],
    options: { workDir: string; signal?: AbortSignal },
  ): Promise<InPlaceRestore>;
}
