/**
 * Runner task messages, version 1: what a state machine puts on a host's queue and what the
 * runner answers. Every message is `{ v: 1, kind, taskId, token, ...fields of its kind }`.
 * The state machines build the message body field by field from {@link TASK_FIELDS}, so every
 * field listed there must always be present in the Admit step's `task` (use null when empty).
 * Secrets travel here only sealed to the host that runs the task (`datastore.sealedSecrets`,
 * platform/sealed-secrets.ts): the execution history keeps every task input, so it holds only
 * ciphertext that this one host's key opens, and the runner reads no secret store of its own.
 */
import { z } from 'zod';
import { DomainName } from '../domain-name.ts';

export const TASK_VERSION = 1;

export const TaskVm = z.object({
  id: z.number().int().nonnegative(),
  /** libvirt domain name: never one virsh would read as an option, an id or a UUID. */
  domain: DomainName,
  state: z.enum(['RUNNING', 'POWEROFF', 'SUSPENDED', 'UNKNOWN', 'GONE']),
});

export const TaskDisk = z.object({
  id: z.number().int().nonnegative(),
  target: z.string().min(1),
  source: z.string().min(1),
  format: z.enum(['qcow2', 'raw', 'rbd']),
  /**
   * The disk driver that handles it (`drivers/disk/registry.ts`), from the disk's type
   * ({@link diskDriverFor}). Absent (a control plane older than the field): the registry's
   * default, file disks.
   */
  driver: z.enum(['qcow2', 'rbd']).optional(),
});

/** The disk driver a disk of `format` needs: `rbd` for Ceph images, `qcow2` for files (qcow2 or raw). */
export function diskDriverFor(format: z.infer<typeof TaskDisk>['format']): 'qcow2' | 'rbd' {
  return format === 'rbd' ? 'rbd' : 'qcow2';
}

export const TaskDatastore = z.object({
  id: z.number().int().nonnegative(),
  driver: z.enum(['restic', 'rsync']),
  attributes: z.record(z.string(), z.string()),
  /**
   * The datastore's secret values (RESTIC_PASSWORD, ...) sealed to the task's host, bound to
   * `ds/<id>`; null when the datastore has none. Only ciphertext: never a value or a reference.
   */
  sealedSecrets: z
    .string()
    .max(65_536)
    .regex(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'must be a sealed secret (v1.…)')
    .nullable(),
  /** Set for a backup job's backups: restic keeps them in the job's repository. */
  jobId: z.number().int().positive().optional(),
});
export type TaskDatastore = z.infer<typeof TaskDatastore>;

export const TaskConfig = z.object({
  FS_FREEZE: z.enum(['NONE', 'AGENT', 'SUSPEND']),
  MODE: z.enum(['FULL', 'INCREMENT']),
  INCREMENT_MODE: z.enum(['CBT', 'SNAPSHOT']),
});

/** The chain point a MODE=INCREMENT backup writes (null in the task for MODE=FULL). */
export const TaskIncrement = z.object({
  /** Image id holding the chain. */
  chain: z.number().int().nonnegative(),
  /** Increment id of the parent; null: this backup is the FULL that starts the chain. */
  parent: z.number().int().nonnegative().nullable(),
  id: z.number().int().nonnegative(),
  /** Name of the libvirt checkpoint this backup creates (`lifeboat-<n>`). */
  checkpoint: z.string().regex(/^lifeboat-[A-Za-z0-9._-]+$/),
  /** The parent's checkpoint; null with `parent` null. */
  parentCheckpoint: z
    .string()
    .regex(/^lifeboat-[A-Za-z0-9._-]+$/)
    .nullable(),
});
export type TaskIncrement = z.infer<typeof TaskIncrement>;

/**
 * A backup's id as a datastore driver makes it (a restic backup group's uuid, an rsync hash).
 * It names remote folders and restic tags: never a path or an option.
 */
export const BackupId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/,
    'must be a backup id (letters, digits and -, not starting with -)',
  );

/**
 * A file of a stored backup (`disk.0.raw`, `disk.0.inc2.qcow2`, `vm.xml`): one plain name that
 * the runner joins to its work folder and the datastore's paths, never a path or an option. A
 * host's backup result names them, so another host's restore must not trust them further.
 */
export const StoredFileName = z
  .string()
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/,
    'must be a plain file name (letters, digits and ._-, not starting with . or -)',
  );

/** The files of one stored backup, by disk: a point of an increment chain. */
export const TaskPoint = z.object({
  backupId: BackupId,
  disks: z.array(z.object({ id: z.number().int().nonnegative(), file: StoredFileName })).min(1),
});

/**
 * A path on the host a restore or download writes to, as a task carries it: absolute, or
 * relative (the runner takes it under the host's first restore root). The runner checks it again
 * against the real file system (`runner/confine.ts`); this refuses early what no path may hold.
 */
export const HostPath = z
  .string()
  .min(1)
  .max(4096)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'must not hold control characters')
  .refine((p) => !p.startsWith('-'), 'must not start with -')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ..');

/** A {@link HostPath} of letters, digits and `._+@/-` only: what the API accepts from a request. */
export const PlainHostPath = HostPath.regex(
  /^[A-Za-z0-9._+@/-]+$/,
  "must be a path of letters, digits and ._+@/- (relative: under the host's restore root)",
);

/**
 * A Ceph pool a restore writes new rbd images into: a plain name (no namespace, no option), as
 * an admin allows it per host (host attribute RESTORE_POOLS).
 */
export const PoolName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be a Ceph pool name (letters, digits, _ . -)');

/**
 * Whether the host's restore roots bound where a restore or download writes: true when a user
 * asked, false when an admin did (who may name any absolute folder). The other path rules apply
 * to everyone. Absent: true.
 */
export const Confine = z.boolean().default(true);

const header = {
  v: z.literal(TASK_VERSION),
  /** Unique per host step: `<execution name>/<state name>`; the runner's journal key. */
  taskId: z.string().min(1).max(512),
  token: z.string().min(1),
  heartbeatSeconds: z.number().int().positive(),
  /**
   * The host the task is for (the queue's host): a runner refuses, without running or answering
   * it, a task naming another host. Absent (a message of a control plane older than the field):
   * not checked.
   */
  hostId: z.number().int().nonnegative().optional(),
};

export const BackupTask = z.object({
  ...header,
  kind: z.literal('backup'),
  vm: TaskVm,
  disks: z.array(TaskDisk).min(1),
  config: TaskConfig,
  increment: TaskIncrement.nullable(),
  datastore: TaskDatastore,
  /** Image id the backup is written for. */
  imageId: z.number().int().nonnegative(),
});
export type BackupTask = z.infer<typeof BackupTask>;

export const RestoreTask = z.object({
  ...header,
  kind: z.literal('restore'),
  imageId: z.number().int().nonnegative(),
  /** VM the backup was taken of: the datastore keeps each VM's backups apart (restic repo per VM). */
  vmId: z.number().int().nonnegative(),
  /** Driver id of the backup (restic snapshot, rsync hash). */
  backupId: BackupId,
  disks: z.array(z.object({ id: z.number().int().nonnegative(), file: StoredFileName })).min(1),
  datastore: TaskDatastore,
  /** Folder on the host the disks are written to (relative: under the first restore root). */
  target: HostPath,
  /** Whether the host's restore roots apply to `target` (see {@link Confine}). */
  confine: Confine,
  /** Name of the new domain (and file name prefix of its disks). */
  name: DomainName,
  /** The cleaned VM template to write beside the disks (null for a single-disk restore). */
  template: z.string().nullable(),
  /** Increment id restored (null: a FULL image). */
  increment: z.number().int().nonnegative().nullable(),
  /**
   * The increments applied on top of the FULL (`backupId`/`disks`), oldest first, up to
   * `increment`; empty for a FULL image or the chain's first point.
   */
  chain: z.array(TaskPoint),
  /**
   * Define the restored VM on the host (domain `name`, from `template`), started when `start`;
   * `emulatorCpus` is the host's EMULATOR_CPUS. Null: only files are written.
   */
  define: z.object({ start: z.boolean(), emulatorCpus: z.string().nullable() }).nullish(),
  /**
   * Ceph pool the disks are restored into, each as the new rbd image `<name>-disk-<id>` (rbd
   * backups only; no template, no domain). Absent or null: files under `target`.
   */
  pool: PoolName.nullish(),
  /**
   * Restore over the disks of the existing, shut-off domain (a safety copy of each is kept until
   * every disk is in place). `disks` are the VM's current disks (a file, or an rbd image
   * `pool/image`) for the disk ids of `disks` above, as the control plane knows them: the runner
   * writes over what libvirt names on its host, never these. Null: a new VM's files.
   */
  inPlace: z
    .object({
      domain: DomainName,
      disks: z.array(
        z
          .object({
            id: z.number().int().nonnegative(),
            source: HostPath,
            format: z.enum(['qcow2', 'raw', 'rbd']),
          })
          .refine(
            (d) => (d.format === 'rbd') !== d.source.startsWith('/'),
            'source must be an absolute path, or for an rbd disk an image name (pool/image)',
          ),
      ),
      /** Start the domain after the restore. */
      start: z.boolean(),
    })
    .nullish(),
});
export type RestoreTask = z.infer<typeof RestoreTask>;

/** Best-effort undo of a failed backup or restore on the host. Must succeed when nothing is left. */
export const CleanupTask = z.object({
  ...header,
  kind: z.literal('cleanup'),
  /** Task id of the step that failed, so the runner finds its leftovers in its journal. */
  failedTaskId: z.string().min(1),
  vm: TaskVm.nullable(),
  imageId: z.number().int().nonnegative().nullable(),
  datastore: TaskDatastore.nullable(),
});
export type CleanupTask = z.infer<typeof CleanupTask>;

/** A stored backup as the datastore drivers name it. */
const backupRef = {
  vmId: z.number().int().nonnegative(),
  /** Driver id of the backup (restic backup group uuid, rsync hash). */
  backupId: BackupId,
  datastore: TaskDatastore,
};

/** Removes one backup from its datastore; succeeds when it is already gone. */
export const RmTask = z.object({ ...header, kind: z.literal('rm'), ...backupRef });
export type RmTask = z.infer<typeof RmTask>;

/** Measures a datastore's capacity (answers {@link MonitorResult}). */
export const MonitorTask = z.object({ ...header, kind: z.literal('monitor'), datastore: TaskDatastore });
export type MonitorTask = z.infer<typeof MonitorTask>;

/**
 * Lists every complete backup the datastore holds, from the datastore alone (answers
 * {@link CatalogResult}): `lifeboat datastore import` rebuilds the images from it.
 */
export const CatalogTask = z.object({ ...header, kind: z.literal('catalog'), datastore: TaskDatastore });
export type CatalogTask = z.infer<typeof CatalogTask>;

/** Restored size of each file of a backup (answers {@link StatResult}). */
export const StatTask = z.object({ ...header, kind: z.literal('stat'), ...backupRef });
export type StatTask = z.infer<typeof StatTask>;

/** Writes one file of a backup to a path on the host (answers {@link DownloadResult}). */
export const DownloadTask = z.object({
  ...header,
  kind: z.literal('download'),
  ...backupRef,
  /** File inside the backup (`disk.0.raw`, `vm.xml`). */
  file: StoredFileName,
  /** Path of the new file on the host (relative: under the first restore root); see {@link HostPath}. */
  toPath: PlainHostPath,
  /** Whether the host's restore roots apply to `toPath` (see {@link Confine}). */
  confine: Confine,
});
export type DownloadTask = z.infer<typeof DownloadTask>;

/** sha256 of a stored file (lower-case hex), as the runner computed it while sending. */
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * Reads a backup's data back and checks it (answers {@link VerifyResult}), each file named in
 * `sums` against the sha256 recorded at backup time (null or absent: none recorded).
 */
export const VerifyTask = z.object({
  ...header,
  kind: z.literal('verify'),
  ...backupRef,
  sums: z.record(StoredFileName, Sha256Hex).nullish(),
});
export type VerifyTask = z.infer<typeof VerifyTask>;

/**
 * Merges the oldest points of an increment chain into one new FULL backup (KEEP_LAST): the
 * chain's FULL and its increments up to the new base, oldest first. The old backups are kept:
 * the control plane removes them once the new base is recorded.
 */
export const FlattenTask = z.object({
  ...header,
  kind: z.literal('flatten'),
  vmId: z.number().int().nonnegative(),
  imageId: z.number().int().nonnegative(),
  datastore: TaskDatastore,
  points: z.array(TaskPoint).min(2),
  /** Template stored with the new base (the chain's). */
  template: z.string(),
});
export type FlattenTask = z.infer<typeof FlattenTask>;

/** One stored backup a drill reads: each disk's file and the sha256 recorded at backup time (or null). */
export const DrillTaskPoint = z.object({
  backupId: BackupId,
  disks: z
    .array(
      z.object({ id: z.number().int().nonnegative(), file: StoredFileName, sha256: Sha256Hex.nullable() }),
    )
    .min(1),
});

/**
 * A restore drill (answers {@link DrillResult}): every point of the image's chain (`points`, the
 * FULL first) downloaded into the runner's own work folder and each file checked against its
 * sha256; then, from every point (or only the last with `latestOnly`), the disks restored, the VM
 * defined from `template` with every NIC removed under the name the runner builds from
 * `drillId` (never a name from the message), started, seen running, and removed with its files.
 */
export const DrillTask = z.object({
  ...header,
  kind: z.literal('drill'),
  drillId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  imageId: z.number().int().nonnegative(),
  vmId: z.number().int().nonnegative(),
  datastore: TaskDatastore,
  points: z.array(DrillTaskPoint).min(1),
  latestOnly: z.boolean(),
  /** The VM template captured at backup time (the runner cleans it again: NO_NIC, its own name). */
  template: z.string().min(1),
  /** The host's EMULATOR_CPUS. */
  emulatorCpus: z.string().nullable(),
});
export type DrillTask = z.infer<typeof DrillTask>;

export const Task = z.discriminatedUnion('kind', [
  BackupTask,
  RestoreTask,
  CleanupTask,
  RmTask,
  MonitorTask,
  CatalogTask,
  StatTask,
  DownloadTask,
  VerifyTask,
  FlattenTask,
  DrillTask,
]);
export type Task = z.infer<typeof Task>;
export type TaskKind = Task['kind'];

/**
 * Fields of each kind besides `taskId` and `token`, which the state machine adds itself.
 * The ASL builds MessageBody from this list, one `"<field>.$": "$.<step>.task.<field>"` each.
 */
export const TASK_FIELDS: Record<TaskKind, readonly string[]> = {
  backup: [
    'v',
    'kind',
    'heartbeatSeconds',
    'hostId',
    'vm',
    'disks',
    'config',
    'increment',
    'datastore',
    'imageId',
  ],
  restore: [
    'v',
    'kind',
    'heartbeatSeconds',
    'hostId',
    'imageId',
    'vmId',
    'backupId',
    'disks',
    'datastore',
    'target',
    'confine',
    'name',
    'template',
    'increment',
    'chain',
    'define',
    'inPlace',
  ],
  cleanup: ['v', 'kind', 'heartbeatSeconds', 'hostId', 'vm', 'imageId', 'datastore'],
  rm: ['v', 'kind', 'heartbeatSeconds', 'hostId', 'vmId', 'backupId', 'datastore'],
  monitor: ['v', 'kind', 'heartbeatSeconds', 'hostId', 'datastore'],
  catalog: ['v', 'kind', 'heartbeatSeconds', 'hostId', 'datastore'],
  stat: ['v', 'kind', 'heartbeatSeconds', 'hostId', 'vmId', 'backupId', 'datastore'],
  download: [
    'v',
    'kind',
    'heartbeatSeconds',
    'hostId',
    'vmId',
    'backupId',
    'datastore',
    'file',
    'toPath',
    'confine',
  ],
  verify: ['v', 'kind', 'heartbeatSeconds', 'hostId', 'vmId', 'backupId', 'datastore', 'sums'],
  flatten: ['v', 'kind', 'heartbeatSeconds', 'hostId', 'vmId', 'imageId', 'datastore', 'points', 'template'],
  drill: [
    'v',
    'kind',
    'heartbeatSeconds',
    'hostId',
    'drillId',
    'imageId',
    'vmId',
    'datastore',
    'points',
    'latestOnly',
    'template',
    'emulatorCpus',
  ],
};

/** Task kinds the Maintenance state machine sends to a host (one machine for all of them). */
export const MAINTENANCE_TASK_KINDS = [
  'rm',
  'monitor',
  'stat',
  'download',
  'verify',
  'flatten',
  'catalog',
  'drill',
] as const;
export type MaintenanceTaskKind = (typeof MAINTENANCE_TASK_KINDS)[number];

/**
 * Fields of the Maintenance machine's message: the union of its kinds' {@link TASK_FIELDS}.
 * Its Admit step sets the fields a kind lacks to null; the runner's schemas strip them.
 */
export const MAINTENANCE_TASK_FIELDS: readonly string[] = [
  ...new Set(MAINTENANCE_TASK_KINDS.flatMap((kind) => TASK_FIELDS[kind])),
];

/** What the runner answers a backup task with (SendTaskSuccess output). */
export const BackupResult = z.object({
  backupId: BackupId,
  disks: z.array(
    z.object({
      id: z.number().int().nonnegative(),
      size: z.number().int().nonnegative(),
      virtualSize: z.number().int().nonnegative(),
      format: z.string(),
      file: StoredFileName,
      /** sha256 of the stored file, computed while it was sent and matched on read-back. */
      sha256: Sha256Hex.optional(),
    }),
  ),
  /**
   * When the stored disks were read back from the datastore and matched their sha256 (before the
   * backup was marked complete). Absent from a runner that does not verify.
   */
  verifiedAt: z.string().datetime({ offset: true }).optional(),
  /** The chain point written (null for MODE=FULL). */
  increment: z
    .object({
      id: z.number().int().nonnegative(),
      parent: z.number().int().nonnegative().nullable(),
      checkpoint: z.string().optional(),
    })
    .nullable(),
  /**
   * Set when the task asked for an increment but the parent could not be followed (checkpoint
   * or bitmap missing or inconsistent): the runner took a FULL starting a new chain instead
   * (`increment` then has `parent` null), and this says why.
   */
  chainReset: z.string().nullable().default(null),
  template: z.string(),
  durationMs: z.number().int().nonnegative(),
});
export type BackupResult = z.infer<typeof BackupResult>;

export const RestoreResult = z.object({
  disks: z.array(
    z.object({ id: z.number().int().nonnegative(), path: z.string(), size: z.number().int().nonnegative() }),
  ),
  templatePath: z.string().nullable(),
  /** Domain defined (or restored in place) on the host, if any. */
  domain: z.string().nullable().default(null),
  /** Whether that domain was started. */
  started: z.boolean().default(false),
  /** What the operator should know (PCI devices left out, ...). */
  notes: z.array(z.string()).default([]),
  durationMs: z.number().int().nonnegative(),
});
export type RestoreResult = z.infer<typeof RestoreResult>;

export const CleanupResult = z.object({ cleaned: z.array(z.string()) });

export const RmResult = z.object({ removed: z.literal(true) });
/** A datastore's space; null where the driver cannot know it (never 0 for unknown). */
export const MonitorResult = z.object({
  totalBytes: z.number().int().nonnegative().nullable(),
  freeBytes: z.number().int().nonnegative().nullable(),
  usedBytes: z.number().int().nonnegative().nullable(),
});
export type MonitorResult = z.infer<typeof MonitorResult>;
/**
 * One backup of a catalog as the runner answers it. Untrusted (it is what the datastore holds):
 * ids, names, sizes, dates and checksums are checked here, one entry at a time, so one bad entry
 * is skipped (and named) rather than failing the import.
 */
export const CatalogEntry = z.object({
  vmId: z
    .number()
    .int()
    .nonnegative()
    .max(2 ** 31),
  backupId: BackupId,
  imageId: z
    .number()
    .int()
    .positive()
    .max(2 ** 31)
    .nullable(),
  jobId: z
    .number()
    .int()
    .positive()
    .max(2 ** 31)
    .nullable(),
  time: z
    .string()
    .max(64)
    .refine((t) => !Number.isNaN(Date.parse(t)), 'must be a date'),
  files: z
    .array(
      z.object({
        name: StoredFileName,
        size: z.number().int().nonnegative(),
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/)
          .nullable(),
      }),
    )
    .min(1)
    .max(64),
  /** Index in {@link CatalogResult}'s `templates`; null when the backup has none. */
  template: z.number().int().nonnegative().nullable(),
});
export type CatalogEntry = z.infer<typeof CatalogEntry>;

/**
 * What a `catalog` task answers: the backups (each entry checked on its own with
 * {@link CatalogEntry}) and their templates, each distinct one once (a chain's points and a
 * VM's successive backups share theirs: the answer must fit in a task result).
 */
export const CatalogResult = z.object({
  backups: z.array(z.unknown()).max(100_000),
  templates: z.array(z.string().max(1024 * 1024)).max(100_000),
});
export type CatalogResult = z.infer<typeof CatalogResult>;

export const StatResult = z.object({
  files: z.array(z.object({ name: z.string(), size: z.number().int().nonnegative() })),
});
export const DownloadResult = z.object({ path: z.string(), size: z.number().int().nonnegative() });
export const VerifyResult = z.object({ verified: z.literal(true) });
/** The new base a flatten stored: its backup id and its file per disk. */
export const FlattenResult = z.object({
  backupId: BackupId,
  disks: z
    .array(
      z.object({
        id: z.number().int().nonnegative(),
        file: StoredFileName,
        size: z.number().int().nonnegative(),
        virtualSize: z.number().int().nonnegative(),
      }),
    )
    .min(1),
});
export type FlattenResult = z.infer<typeof FlattenResult>;

/** What a drill answers: the points started, the bytes read back, how long it took. */
export const DrillResult = z.object({
  /** Points of the chain a VM was started from. */
  points: z.number().int().nonnegative(),
  /** Bytes of the stored files read back and checked. */
  bytes: z.number().int().nonnegative(),
  /** Disks restored (of the last point). */
  disks: z.array(z.object({ id: z.number().int().nonnegative(), size: z.number().int().nonnegative() })),
  durationMs: z.number().int().nonnegative(),
});
export type DrillResult = z.infer<typeof DrillResult>;
