/**
 * The objects Lifeboat stores, as zod schemas (validated when read from and written to DynamoDB
 * by the repositories) and their inferred types. Ids are small integers from an atomic counter,
 * as operators are used to (`VM 63`, `DS 100`).
 */
import { z } from 'zod';
import { PERMISSIONS_PATTERN } from './permissions.ts';
import { ScheduleSpec } from './schedule.ts';

export const Id = z.number().int().nonnegative();

/** Owner, group and a Unix-like permission string (`um- g-- o--`), as upstream. */
export const Ownership = z.object({
  owner: z.string().min(1),
  group: z.string().min(1),
  permissions: z.string().regex(PERMISSIONS_PATTERN),
});

export const HostState = z.enum(['INIT', 'MONITORED', 'ERROR', 'DISABLED', 'OFFLINE']);
export const Host = z.object({
  id: Id,
  name: z.string().min(1),
  cluster: z.string().default('default'),
  state: HostState,
  runnerVersion: z.string().optional(),
  lastHeartbeat: z.string().optional(),
  queueUrl: z.string().optional(),
  deadLetterQueueUrl: z.string().optional(),
  emulatorCpus: z.string().optional(),
  maxBackupsHost: z.number().int().positive().optional(),
  /** RESTORE_POOLS: the Ceph pools an admin lets restores on this host write new rbd images into. */
  restorePools: z.array(z.string()).optional(),
  /** Owner of the VMs first seen on this host whose metadata names none (else admin). */
  defaultOwner: z.string().min(1).optional(),
  /** Their group (else the default owner's own group). */
  defaultGroup: z.string().min(1).optional(),
  /**
   * The runner's X25519 public key (PEM), registered at enrollment: datastore secrets are
   * sealed to it (platform/sealed-secrets.ts) so only this host can open its tasks' secrets.
   */
  publicKey: z.string().optional(),
  createdAt: z.string(),
});
export type Host = z.infer<typeof Host>;

export const DiskFormat = z.enum(['qcow2', 'raw', 'rbd']);
export const Disk = z.object({
  id: Id,
  target: z.string().min(1),
  source: z.string().min(1),
  format: DiskFormat,
  size: z.number().int().nonnegative(),
  /** Bytes the disk really holds (qcow2 allocation, rbd used), when the inventory knows it. */
  allocated: z.number().int().nonnegative().optional(),
  /** Bytes changed since the last backup's checkpoint, when the inventory knows it. */
  dirty: z.number().int().nonnegative().optional(),
  volatile: z.boolean().default(false),
  canIncrement: z.boolean().default(false),
});
export type Disk = z.infer<typeof Disk>;

export const Nic = z.object({
  id: Id,
  network: z.string().optional(),
  ip: z.string().optional(),
  ip6: z.string().optional(),
  mac: z.string().optional(),
});
export type Nic = z.infer<typeof Nic>;

/** BACKUP_CONFIG as stored: upper-case keys, string values, exactly as the reference schema. */
export const BackupConfigRecord = z.record(z.string(), z.string());
export type BackupConfigRecord = z.infer<typeof BackupConfigRecord>;
export const Backups = z.object({
  BACKUP_CONFIG: BackupConfigRecord,
  /** Image ids of the VM's valid backups, oldest first. */
  BACKUP_IDS: z.array(Id),
});
export type Backups = z.infer<typeof Backups>;

export const VmState = z.enum(['RUNNING', 'POWEROFF', 'SUSPENDED', 'UNKNOWN', 'GONE']);
/** One move of a VM (its domain UUID) from a host to another, seen by the inventory. */
export const VmMove = z.object({
  from: Id,
  to: Id,
  at: z.string(),
  /** Domain name on the old host (the new one may define it under another). */
  domain: z.string(),
  /** Why the old host let it go: it no longer reported the VM (GONE), was OFFLINE/DISABLED, or removed. */
  reason: z.enum(['GONE', 'OFFLINE', 'DISABLED', 'REMOVED']),
});
export type VmMove = z.infer<typeof VmMove>;
/** Moves kept on a VM record, the latest last (older ones are dropped). */
export const MAX_VM_MOVES = 20;
export const Vm = Ownership.extend({
  id: Id,
  name: z.string().min(1),
  hostId: Id,
  /** libvirt domain name on the host. */
  domain: z.string().min(1),
  /** libvirt domain UUID: the VM's identity, which follows it from host to host. */
  uuid: z.string().optional(),
  state: VmState,
  disks: z.array(Disk),
  nics: z.array(Nic),
  /** The libvirt domain XML, with Lifeboat's attributes in its metadata element. */
  template: z.string().default(''),
  backups: Backups,
  /** Id of the execution holding the VM's backup lock, if any. */
  lock: z.string().optional(),
  /** Its moves between hosts, oldest first (at most {@link MAX_VM_MOVES}); absent if it never moved. */
  moves: z.array(VmMove).max(MAX_VM_MOVES).optional(),
  createdAt: z.string(),
});
export type Vm = z.infer<typeof Vm>;

export const DatastoreDriverName = z.enum(['restic', 'rsync']);
export type DatastoreDriverName = z.infer<typeof DatastoreDriverName>;
export const Datastore = Ownership.extend({
  id: Id,
  name: z.string().min(1),
  type: z.literal('BACKUP'),
  driver: DatastoreDriverName,
  /** Driver attributes without secrets. */
  attributes: z.record(z.string(), z.string()),
  /** Names of the attributes held in the secret store (their values are never returned). */
  secretAttributes: z.array(z.string()),
  /** Reference the runner resolves to the secret values (Secrets Manager or the local store). */
  secretRef: z.string().optional(),
  /** Capacity from the last `monitor` (absent: never measured, or the driver cannot know it). */
  totalBytes: z.number().int().nonnegative().optional(),
  freeBytes: z.number().int().nonnegative().optional(),
  usedBytes: z.number().int().nonnegative().optional(),
  /** When the last `monitor` measured it. */
  monitoredAt: z.string().optional(),
  createdAt: z.string(),
});
export type Datastore = z.infer<typeof Datastore>;

/**
 * One measure of a datastore's capacity, kept (CAPACITY_RETENTION_DAYS, default 400) so its
 * history can be charted. A figure the driver could not know is absent.
 */
export const CapacitySample = z.object({
  /** `<datastoreId>#<executionId>` (one per monitor), else `<datastoreId>#<at>`. */
  id: z.string().min(1),
  datastoreId: Id,
  at: z.string(),
  totalBytes: z.number().int().nonnegative().optional(),
  freeBytes: z.number().int().nonnegative().optional(),
  usedBytes: z.number().int().nonnegative().optional(),
  /** The monitor execution that measured it. */
  executionId: z.string().optional(),
  /** Epoch seconds when DynamoDB's TTL removes it. */
  expiresAt: z.number().int().positive(),
});
export type CapacitySample = z.infer<typeof CapacitySample>;

/** DELETING: taken out of its VM's BACKUP_IDS, its data being removed by a `delete` execution. */
export const ImageState = z.enum(['LOCKED', 'READY', 'ERROR', 'DELETING']);
export const BackupMode = z.enum(['FULL', 'INCREMENT']);
/** sha256 of a stored file's bytes (hex, lower case). */
export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lower-case hex');
export const ImageDisk = z.object({
  id: Id,
  size: z.number().int().nonnegative(),
  virtualSize: z.number().int().nonnegative(),
  format: z.string(),
  file: z.string().optional(),
  /**
   * sha256 of the stored file as it was sent and read back, or as the datastore stores it for an
   * imported image (absent: backed up before verification).
   */
  sha256: Sha256.optional(),
});
/** One point of an increment chain: the FULL that starts it, or an increment on its parent. */
export const Increment = z.object({
  id: Id,
  parent: Id.optional(),
  type: BackupMode,
  /** The driver's id of this point's backup. */
  source: z.string(),
  size: z.number().int().nonnegative(),
  date: z.string(),
  /** The files of this point's backup, by disk (older records: `disk.<id>.inc<N>.qcow2`). */
  disks: z
    .array(
      z.object({ id: Id, file: z.string(), size: z.number().int().nonnegative(), sha256: Sha256.optional() }),
    )
    .optional(),
  /** When this point's stored files were read back and matched their sha256 (ISO 8601). */
  verifiedAt: z.string().optional(),
  /** libvirt checkpoint taken with this point: the next increment follows it. */
  checkpoint: z.string().optional(),
  /** For a FULL: why the VM's previous chain was not extended (a chain reset). */
  resetReason: z.string().optional(),
});
export type Increment = z.infer<typeof Increment>;
export const Image = Ownership.extend({
  id: Id,
  name: z.string().min(1),
  type: z.literal('BACKUP'),
  datastoreId: Id,
  vmId: Id,
  state: ImageState,
  mode: BackupMode,
  /** The driver's id of the backup (restic snapshot id, rsync hash). */
  source: z.string().default(''),
  size: z.number().int().nonnegative().default(0),
  disks: z.array(ImageDisk).default([]),
  /** VM template captured at backup time. */
  template: z.string().default(''),
  increments: z.array(Increment).default([]),
  /**
   * When the image's stored files were last read back and matched their sha256 (ISO 8601): at
   * backup time, before the image became READY. Absent: never verified (older images).
   */
  verifiedAt: z.string().optional(),
  /**
   * The last verification's outcome (at backup time, or `image verify`): OK, or FAILED with
   * `verifyError` naming the file. Absent: never verified (older images).
   */
  verifyState: z.enum(['OK', 'FAILED']).optional(),
  /** Why the last verification FAILED (the runner's message, naming the file). */
  verifyError: z.string().optional(),
  /**
   * The VM's BACKUP_CONFIG (defaults filled in) when the image was written; for an increment
   * chain, when the chain started. `core/chain.ts` compares it to decide a chain reset.
   */
  backupConfig: BackupConfigRecord.optional(),
  /** The backup job that made it, if any (a restic datastore keeps it in the job's repository). */
  jobId: Id.optional(),
  /**
   * Whose datastore quota it counts against (core/quota.ts) and how many MiB its backups were
   * charged: released when it is deleted. Absent: it counts against none (an admin's, or older).
   */
  quota: z
    .object({ user: z.string().min(1), group: z.string().min(1), sizeMiB: z.number().int().nonnegative() })
    .optional(),
  executionId: z.string().optional(),
  /**
   * While DELETING: whether its delete executions are queued. False between the claim and the
   * queueing, so a caller that crashed in between (or a retry) can claim it again.
   */
  deleteQueued: z.boolean().optional(),
  createdAt: z.string(),
});
export type Image = z.infer<typeof Image>;

/**
 * backup and restore run their own state machines; `delete` (remove an image's data), `download`
 * (one file of a backup to a host path), `verify`, `monitor` (a datastore's capacity) and
 * `flatten` (KEEP_LAST on an increment chain: its oldest points merged into a new base),
 * `import` (a datastore's images rebuilt from its catalog) and `drill` (a restore drill,
 * core/drill.ts) run the Maintenance machine.
 */
export const ExecutionKind = z.enum([
  'backup',
  'restore',
  'delete',
  'download',
  'verify',
  'monitor',
  'flatten',
  'import',
  'drill',
]);
export type ExecutionKind = z.infer<typeof ExecutionKind>;

/** Kinds run by the Maintenance state machine (every kind but a backup and a restore). */
export const MaintenanceKind = ExecutionKind.exclude(['backup', 'restore']);
export type MaintenanceKind = z.infer<typeof MaintenanceKind>;

/** {@link MaintenanceKind} as a set: they take no MAX_BACKUPS slot (but verify and drill). */
export const MAINTENANCE_KINDS: ReadonlySet<ExecutionKind> = new Set(MaintenanceKind.options);

/**
 * Maintenance kinds that still hold a slot: a verify reads a whole backup back and a drill
 * restores one and starts a VM from it (its runner counts both as heavy work too), and a
 * datastore's schedule queues one per stored backup or per sampled image. Sent to
 * a host all at once, those its runner cannot take yet would wait in its queue past their
 * heartbeat; holding MAX_BACKUPS_HOST slots, they start as fast as the host takes them.
 */
const SLOTTED_MAINTENANCE: ReadonlySet<ExecutionKind> = new Set(['verify', 'drill']);

/** Whether an operation of `kind` holds a MAX_BACKUPS / MAX_BACKUPS_HOST slot while it runs. */
export function takesSlot(kind: ExecutionKind): boolean {
  return !MAINTENANCE_KINDS.has(kind) || SLOTTED_MAINTENANCE.has(kind);
}
/**
 * A restore drill's report (`lifeboat drill list | show`): an image restored on a host into the
 * runner's scratch space, checked, started without NICs and removed (core/drill.ts). RUNNING
 * until its execution ends OK or FAILED (`error` says why, naming the disk).
 */
export const Drill = z.object({
  id: Id,
  imageId: Id,
  vmId: Id,
  datastoreId: Id,
  hostId: Id,
  executionId: z.string().min(1),
  /** Start a VM from the latest point only (else from every point of a chain). */
  latestOnly: z.boolean().default(false),
  result: z.enum(['RUNNING', 'OK', 'FAILED']),
  /** Points of the chain a VM was started from (when OK). */
  points: z.number().int().nonnegative().optional(),
  /** Bytes of stored files read back and checked (when OK). */
  bytes: z.number().int().nonnegative().optional(),
  /** How long the host took (when OK). */
  seconds: z.number().nonnegative().optional(),
  error: z.string().optional(),
  requestedBy: z.string().min(1),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  endedAt: z.string().optional(),
});
export type Drill = z.infer<typeof Drill>;

export const ExecutionState = z.enum(['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);
/** The error name a cancel records on the execution it ends (`lifeboat execution cancel`). */
export const CANCELLED = 'Cancelled';
/** Whether a cancel marked the execution (it ended ABORTED, or is being ended so). */
export function wasCancelled(record: { error?: { name: string } }): boolean {
  return record.error?.name === CANCELLED;
}
export const Execution = z.object({
  /** Also the id of the request it came from. */
  id: z.string().min(1),
  kind: ExecutionKind,
  state: ExecutionState,
  phase: z.string().default('queued'),
  vmId: Id.optional(),
  hostId: Id.optional(),
  datastoreId: Id.optional(),
  imageId: Id.optional(),
  bytesDone: z.number().int().nonnegative().default(0),
  bytesTotal: z.number().int().nonnegative().default(0),
  /** ARN of the state machine execution once started. */
  executionArn: z.string().optional(),
  requestedBy: z.string(),
  priority: z.number().int().min(0).max(99).default(0),
  /** Operation parameters as requested (backup: reset; restore: options). */
  params: z.record(z.string(), z.unknown()).default({}),
  startedAt: z.string().optional(),
  endedAt: z.string().optional(),
  createdAt: z.string(),
  error: z.object({ name: z.string(), message: z.string() }).optional(),
});
export type Execution = z.infer<typeof Execution>;

/**
 * `host` is a runner, not a user: either a host principal (`host:<id>`, with `hostId`) whose
 * credential acts only for its own host, or a one-time enrollment (`enroll:<name>`, with
 * `hostName` and `enrollUntil`) that may only register the host of that name.
 */
export const UserRole = z.enum(['admin', 'user', 'host']);
export type UserRole = z.infer<typeof UserRole>;
export const User = z.object({
  name: z.string().min(1),
  group: z.string().min(1),
  role: UserRole,
  /**
   * sha256 hex of the principal's one token: host credentials, enrollments and users made before
   * the tokens table (their token keeps working). Users' tokens live in the tokens table.
   */
  tokenHash: z.string().length(64).optional(),
  /** Random per user record: the tokens made for it carry it, so a user deleted and created again
   * under the same name inherits none. Absent on principals older than the tokens table. */
  uid: z.string().min(1).optional(),
  createdAt: z.string(),
  /** Host principal: the only host it acts for. */
  hostId: Id.optional(),
  /** Enrollment: the name of the host its token may register. */
  hostName: z.string().min(1).optional(),
  /** Enrollment: when its token stops working (ISO-8601). */
  enrollUntil: z.string().optional(),
});
export type User = z.infer<typeof User>;

/** The most images one scheduled drill run restores. */
export const MAX_DRILL_SAMPLE = 20;

/** The most images one scheduled verify run with a sample reads back (without one: every image). */
export const MAX_VERIFY_SAMPLE = 1000;

/** What a schedule belongs to: a VM, a backup job or a datastore. */
export const ScheduleTarget = z.enum(['vm', 'job', 'datastore']);
export type ScheduleTarget = z.infer<typeof ScheduleTarget>;

/**
 * What a scheduled run does: back up (a VM, a job's VMs), verify (a datastore's images) or drill
 * (restore a sample of a datastore's or a job's images: core/drill.ts).
 */
export const ScheduleActionKind = z.enum(['backup', 'verify', 'drill']);
export type ScheduleActionKind = z.infer<typeof ScheduleActionKind>;

/**
 * What a scheduled action does: back up its VM, run its backup job, or verify every READY image
 * of its datastore (`lifeboat datastore sched add DSID --action verify`).
 */
export const ScheduledAction = z.object({
  id: Id,
  /** A VM's schedule, a backup job's or a datastore's. */
  target: ScheduleTarget,
  targetId: Id,
  action: ScheduleActionKind,
  /** The datastore of a VM backup (a job has its own; a datastore's schedule is its own). */
  datastoreId: Id.optional(),
  reset: z.boolean().default(false),
  priority: z.number().int().min(0).max(99).default(0),
  /**
   * A drill's or a verify's images per run, the least recently verified first (core/verify-turn.ts);
   * absent for a backup, and for a verify that reads every image back each run.
   */
  sample: z.number().int().min(1).max(MAX_VERIFY_SAMPLE).optional(),
  spec: ScheduleSpec,
  /** When it runs next; absent once it is over. */
  nextRunAt: z.string().optional(),
  runs: z.number().int().nonnegative().default(0),
  lastRunAt: z.string().optional(),
  /** The execution (or, for a job, the first execution) its last run queued. */
  lastExecutionId: z.string().optional(),
  /** Why its last run queued nothing (the VM was gone, locked, ...). */
  lastError: z.string().optional(),
  /** Who created it: its runs are requested in their name. */
  createdBy: z.string().min(1),
  createdAt: z.string(),
});
export type ScheduledAction = z.infer<typeof ScheduledAction>;

/** Whether a backup job backs up one VM at a time, in order, or all at once (within the limits). */
export const JobExecutionMode = z.enum(['SEQUENTIAL', 'PARALLEL']);
export type JobExecutionMode = z.infer<typeof JobExecutionMode>;

/**
 * A backup job: VMs backed up together to one datastore with shared BACKUP_CONFIG defaults.
 * `outdatedVms` wait for this run, `backingUpVms` are queued or running, `updatedVms` ended well
 * and `errorVms` failed (`backupjob retry` queues them again).
 */
export const BackupJob = Ownership.extend({
  id: Id,
  name: z.string().min(1),
  vmIds: z.array(Id).min(1),
  datastoreId: Id,
  /** BACKUP_CONFIG defaults for every VM of the job (KEEP_LAST, MODE, FS_FREEZE, ...). */
  config: BackupConfigRecord.default({}),
  priority: z.number().int().min(0).max(99).default(0),
  execution: JobExecutionMode.default('SEQUENTIAL'),
  outdatedVms: z.array(Id).default([]),
  backingUpVms: z.array(Id).default([]),
  updatedVms: z.array(Id).default([]),
  errorVms: z.array(Id).default([]),
  lastRunAt: z.string().optional(),
  createdAt: z.string(),
});
export type BackupJob = z.infer<typeof BackupJob>;
