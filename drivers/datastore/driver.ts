/**
 * Where backups are stored. One implementation per driver (restic, rsync, ...), registered in
 * `registry.ts`, each passing the one conformance suite in `test/drivers/datastore.conformance.ts`.
 *
 * Rules every implementation keeps:
 * - Each operation is idempotent: running it again after a crash or a redelivered task gives the
 *   same end state (a backup written twice leaves one usable backup; rm of a missing backup
 *   succeeds).
 * - Disks are streamed: a disk given as a {@link DiskSource} of kind `nbd` is read with nbdcopy,
 *   one of kind `stream` is the output of its command, and neither is ever copied whole to a
 *   temporary file on the host.
 * - Secrets come in {@link DatastoreTarget.secrets}, go to tools only through the environment or
 *   a 0600 file removed afterwards, and never appear in arguments, logs or errors.
 * - Failures are typed: `DatastoreUnreachable` (server down, ssh refused), `DatastoreAuthFailed`
 *   (wrong password or key), `DatastoreLocked` (transient: another operation holds the repo),
 *   `BackupNotFound`, otherwise ExecError.
 * - `signal` aborts the operation and kills every child process.
 */
import type { Command } from '../exec.ts';

export interface DatastoreTarget {
  id: number;
  attributes: Readonly<Record<string, string>>;
  /** Secret attribute values (RESTIC_PASSWORD, ...), resolved by the runner. */
  secrets: Readonly<Record<string, string>>;
  /**
   * The backup job whose backups these are, if any: restic keeps a job's backups of all its VMs
   * in one repository, `<BASE_PATH>/job-<id>` (see `repositoryPath`). rsync ignores it.
   */
  jobId?: number;
}

/**
 * One disk to store: a file on the host, an NBD export streamed without a copy, or the stdout of
 * a command (`rbd export SNAP -`) streamed without a copy (`size`: the bytes expected, for
 * progress; a diff stream's is an upper bound).
 */
export type DiskSource =
  | {
      kind: 'file';
      path: string;
      /**
       * The file is stable (may be read) only once this resolves: a backup started while the disk
       * driver makes its snapshot. A rejection fails the backup. Only drivers with `readsEarly`
       * are given one.
       */
      ready?: Promise<unknown>;
    }
  | { kind: 'nbd'; uri: string; size: number }
  | { kind: 'stream'; command: Command; size: number };

export interface BackupInput {
  vmId: number;
  /** Lifeboat image id (used in tags and names). */
  imageId: number;
  /** File name inside the backup (`disk.0.raw`, `disk.1.qcow2`) and where to read it from. */
  files: { name: string; source: DiskSource }[];
  /** The VM template, stored as `vm.xml` next to the disks. */
  template: string;
}

export interface StoredFile {
  name: string;
  /** Bytes the file takes once restored. */
  size: number;
  /**
   * sha256 (hex) of the file's bytes, from a backup: computed while they streamed to the
   * datastore, and equal to what the datastore held when read back before the backup completed.
   */
  sha256?: string;
}

export interface BackupOutput {
  /** The driver's id of the backup: restic snapshot id, rsync hash. */
  backupId: string;
  files: StoredFile[];
  /**
   * When the stored disks were read back and matched the sha256 computed while sending them
   * (ISO 8601). The drivers of this repository always verify; absent only from a driver that
   * cannot.
   */
  verifiedAt?: string;
}

/** A backup's context: an operation's, plus what the runner and tests watch. */
export interface BackupContext extends OperationContext {
  /** Told once every disk is stored and their read-back (the verification) starts. */
  onVerifying?: () => void;
  /** Told when every disk read back matched: what is left is storing the completion marker. */
  onVerified?: () => void;
  /**
   * Tests only (a function: no task message can carry one): runs after the disks are stored,
   * before they are read back, so a test can damage what the datastore holds.
   */
  afterStore?: (stored: { backupId: string; files: readonly StoredFile[] }) => Promise<void>;
}

export interface OperationContext {
  signal?: AbortSignal;
  /** Bytes processed so far for the current operation, when the tool reports it. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/**
 * A datastore's space, each figure null when the driver cannot know it (never 0 for "unknown":
 * a 0 FREE reads as a full datastore and refuses every backup).
 */
export interface Capacity {
  /** Size of the filesystem holding BASE_PATH. */
  totalBytes: number | null;
  /** Bytes the backup server's user may still write there. */
  freeBytes: number | null;
  /** Bytes the datastore's repositories take (one per VM, one per backup job). */
  usedBytes: number | null;
}

/**
 * One complete backup a datastore holds, as the datastore itself records it (restic tags and
 * snapshots; rsync folders, `.complete`, `vm.xml` and `SHA256SUMS`): what `catalog` answers, so
 * a control plane that lost its database can rebuild its images. Untrusted: the control plane
 * validates every field (core/contracts/tasks.ts, CatalogResult).
 */
export interface CatalogBackup {
  vmId: number;
  /** The driver's id of the backup (restic backup group uuid, rsync hash). */
  backupId: string;
  /** The Lifeboat image id the backup was written for, as stored (tag or marker); null if none. */
  imageId: number | null;
  /** The backup job whose repository holds it (restic `job-<id>`); null for a VM's own. */
  jobId: number | null;
  /** When it was stored (ISO 8601). */
  time: string;
  /** Its disk files (not the template), with their sha256 where the datastore stores one. */
  files: (Omit<StoredFile, 'sha256'> & { sha256: string | null })[];
  /** The VM template stored with it (`vm.xml`); null when absent or unreadable. */
  template: string | null;
}

export interface DatastoreDriver {
  readonly name: string;
  /**
   * Whether `backup` takes `nbd` and `stream` sources (else files only: the disk driver then
   * hands out files).
   */
  readonly readsNbd: boolean;
  /**
   * Whether `backup` honours a file source's `ready`: it then starts (opens its repository)
   * while the disks are being made stable, and reads them once they are.
   */
  readonly readsEarly?: boolean;
  /**
   * Stores the disks and the template as a new backup. Each disk's sha256 is computed while it
   * streams; once stored, the disks are read back from the datastore and hashed, and only when
   * every sum matches is the backup marked complete. A mismatch throws
   * `BackupVerifyFailed` (errors.ts) naming the disk, and the backup is removed as any failed one.
   */
  backup(target: DatastoreTarget, input: BackupInput, ctx?: BackupContext): Promise<BackupOutput>;
  /** Writes the named files of a backup into `toDir` (created if missing); returns their paths. */
  restore(
    target: DatastoreTarget,
    ref: { vmId: number; backupId: string; files: string[]; toDir: string },
    ctx?: OperationContext,
  ): Promise<{ name: string; path: string; size: number }[]>;
  /**
   * Writes one file of a backup into `toPath`: an existing empty file (0600) the runner created
   * exclusively in a folder it checked, under a temporary name it links into place afterwards
   * (`runner/confine.ts`). The driver writes the content there (in place, or by renaming its
   * own temporary file in the same folder over it), creates no folder and writes nothing else.
   */
  download(
    target: DatastoreTarget,
    ref: { vmId: number; backupId: string; file: string; toPath: string },
    ctx?: OperationContext,
  ): Promise<{ size: number }>;
  monitor(target: DatastoreTarget, ctx?: OperationContext): Promise<Capacity>;
  /** Removes a backup and frees its space. Succeeds when it is already gone. */
  rm(target: DatastoreTarget, ref: { vmId: number; backupId: string }, ctx?: OperationContext): Promise<void>;
  /** Restored size of each file of a backup. */
  stat(
    target: DatastoreTarget,
    ref: { vmId: number; backupId: string },
    ctx?: OperationContext,
  ): Promise<StoredFile[]>;
  /**
   * Checks the backup's data can be read back intact, streamed (no copy of a disk is written
   * anywhere): every file read back and, for those `sums` names, its sha256 compared with the one
   * recorded at backup time. Throws `BackupVerifyFailed` naming the first file that differs or
   * cannot be read (BackupNotFound when the backup is missing or incomplete).
   */
  verify(
    target: DatastoreTarget,
    ref: { vmId: number; backupId: string; sums?: Readonly<Record<string, string>> },
    ctx?: OperationContext,
  ): Promise<void>;
  /**
   * Every complete backup the datastore holds (all its repositories), read from the datastore
   * alone: incomplete ones (no completion marker) are left out.
   */
  catalog(target: DatastoreTarget, ctx?: OperationContext): Promise<CatalogBackup[]>;
  /** Removes stale locks and temporary files left by a crashed run (runner start-up). */
  reconcile(target: DatastoreTarget, ref: { vmId: number }, ctx?: OperationContext): Promise<void>;
}
