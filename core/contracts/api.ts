/**
 * Request bodies and query parameters of the HTTP API (one schema per route that takes input).
 * Every object is strict: an unknown field is an error, not silently dropped, so a typo in a
 * client never turns into a default. Use {@link parseBody} to validate: it throws a
 * ValidationError whose one-line message names the field (`attributes.RESTIC_PASSWORD: required`).
 */
import { z } from 'zod';
import { GroupName, UserName } from '../accounts.ts';
import { attributeIssues } from '../datastore-attributes.ts';
import { DomainName, domainNameProblem } from '../domain-name.ts';
import { ValidationError } from '../errors.ts';
import {
  DatastoreDriverName,
  DiskFormat,
  ExecutionState,
  MAX_VERIFY_SAMPLE,
  ScheduleActionKind,
  VmState,
} from '../model.ts';
import { isOctalPermissions, OCTAL_RULE } from '../permissions.ts';
import { HostPath, PlainHostPath, PoolName } from './tasks.ts';

const id = z.number().int().nonnegative();
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** Text shown to people (names, labels): no control character, so no terminal escape or fake log line. */
const label = (max: number) =>
  z
    .string()
    .max(max)
    .refine((t) => !CONTROL.test(t), 'must not hold control characters');
/**
 * The name of a datastore, job or cluster: shown in lists and tables, never a path or an option
 * (no `/`, no leading `-`), no control characters.
 */
const name = z
  .string()
  .trim()
  .min(1)
  .max(128)
  .refine((n) => !CONTROL.test(n), 'must not hold control characters')
  .refine((n) => !n.startsWith('-'), 'must not start with -')
  .refine((n) => !n.includes('/'), 'must not hold /');
/** Attribute and config values: strings, numbers accepted from JSON clients and kept as text. */
const textValue = z.union([z.string(), z.number().transform(String)]);

/** A numeric id in a path (`/vms/{id}`) or query string, as text. */
export const IdText = z
  .string()
  .regex(/^\d{1,9}$/, 'must be a non-negative integer')
  .transform(Number);

/** A host's name, as the runner registers it (its host name by default). */
export const HostName = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'must be a host name (letters, digits, . and -)');

/** A host's X25519 public key (SPKI PEM); its content is checked where node:crypto is at hand. */
const publicKeyPem = z.string().min(1).max(4096);

/** `POST /hosts` (admins) */
export const CreateHostBody = z.strictObject({
  name: HostName,
  cluster: name.optional(),
  /** CPU ids the emulator threads are pinned to (`0-1`, `0,2`), as upstream EMULATOR_CPUS. */
  emulatorCpus: z
    .string()
    .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'must be a CPU list such as 0-1,4')
    .optional(),
  maxBackupsHost: z.number().int().positive().max(1000).optional(),
  /**
   * The runner's X25519 public key (PEM), for hosts an admin registers on a runner's behalf:
   * datastore secrets are sealed to it. Checked as a key by the route.
   */
  publicKey: z.string().min(1).max(4096).optional(),
});
export type CreateHostBody = z.infer<typeof CreateHostBody>;

/** Longest life of an enrollment token: 30 days. */
export const MAX_ENROLL_SECONDS = 30 * 24 * 3600;

/** `POST /hosts/enroll` (admins): a one-time token the runner of host `name` registers with. */
export const EnrollHostBody = z.strictObject({
  name: HostName,
  /** How long the token works (default 1 hour). */
  expiresInSeconds: z.number().int().positive().max(MAX_ENROLL_SECONDS).default(3600),
});
export type EnrollHostBody = z.infer<typeof EnrollHostBody>;

/** A runner's version as it reports it (`1.4.0`, `1.4.0-rc.1+abc`). */
const RunnerVersion = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$/, 'must be a version (letters, digits and .+_~-)');

/** `POST /hosts/register` (enrollment token): the runner's name, public key and version. */
export const RegisterHostBody = z.strictObject({
  name: HostName,
  publicKey: publicKeyPem,
  runnerVersion: RunnerVersion.optional(),
});
export type RegisterHostBody = z.infer<typeof RegisterHostBody>;

/**
 * `PUT /runner/hosts/{id}/key` (a runner signed with IAM): its X25519 public key, which datastore
 * secrets are sealed to, and its version.
 */
export const HostKeyBody = z.strictObject({
  publicKey: publicKeyPem,
  runnerVersion: RegisterHostBody.shape.runnerVersion,
});
export type HostKeyBody = z.infer<typeof HostKeyBody>;

/** `PATCH /hosts/{id}`: the settings to change; an empty EMULATOR_CPUS or a null limit removes it. */
export const UpdateHostBody = z
  .strictObject({
    emulatorCpus: z.union([CreateHostBody.shape.emulatorCpus.unwrap(), z.literal('')]).optional(),
    maxBackupsHost: CreateHostBody.shape.maxBackupsHost.unwrap().nullable().optional(),
    /** RESTORE_POOLS: the Ceph pools restores on this host may write into; empty: none. */
    restorePools: z.array(PoolName).max(64).optional(),
    /** Owner of the VMs the inventory first sees on the host without an owner in their metadata; null: none (admin). */
    defaultOwner: UserName.nullable().optional(),
    /** Their group; null: the owner's own group. */
    defaultGroup: GroupName.nullable().optional(),
    /** true: DISABLED, the host takes no new work (`host disable`); false: enabled again. */
    disabled: z.boolean().optional(),
  })
  .refine((b) => Object.values(b).some((value) => value !== undefined), {
    message:
      'name at least one of emulatorCpus, maxBackupsHost, restorePools, defaultOwner, defaultGroup, disabled',
  })
  .refine((b) => !(b.defaultOwner === null && typeof b.defaultGroup === 'string'), {
    message: 'a default group needs a default owner',
    path: ['defaultGroup'],
  });
export type UpdateHostBody = z.infer<typeof UpdateHostBody>;

/**
 * An inventory disk. Its source and target reach the runner's tools again in backup tasks, so
 * they hold no option, traversal or control character: a file disk's source is an absolute
 * {@link HostPath}, an rbd disk's is `pool/image` (no leading `/`), a target a device name.
 */
export const InventoryDisk = z
  .strictObject({
    id,
    target: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/, 'must be a device name such as vda'),
    source: HostPath,
    format: DiskFormat,
    size: z.number().int().nonnegative(),
    /** Bytes the disk really holds (qcow2 or raw file: `qemu-img info` actual-size), when known. */
    allocated: z.number().int().nonnegative().optional(),
    volatile: z.boolean().default(false),
    canIncrement: z.boolean().default(false),
  })
  .superRefine((disk, ctx) => {
    const absolute = disk.source.startsWith('/');
    if (disk.format !== 'rbd' && !absolute)
      ctx.addIssue({ code: 'custom', path: ['source'], message: 'must be an absolute path' });
    if (disk.format === 'rbd' && absolute)
      ctx.addIssue({ code: 'custom', path: ['source'], message: 'must be an rbd image name (pool/image)' });
  });

export const InventoryNic = z.strictObject({
  id,
  network: label(255).optional(),
  ip: label(64).optional(),
  ip6: label(64).optional(),
  mac: label(64).optional(),
});

/** Longest domain XML an inventory stores (a VM record holds it, and DynamoDB items stop at 400 KB). */
export const MAX_TEMPLATE_BYTES = 128 * 1024;

/**
 * A UUID as libvirt prints it (lower case, 8-4-4-4-12), whichever of the forms virsh accepts
 * (with or without dashes, any case) it came in: the one key the VMs table looks it up by.
 */
export function canonicalUuid(uuid: string): string {
  const hex = uuid.replaceAll('-', '').toLowerCase();
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-');
}

export const InventoryVm = z.strictObject({
  /** Never a name virsh would read as an id, a UUID or an option (core/domain-name.ts). */
  domain: DomainName,
  /** The domain's identity (the VM's, across hosts): stored in canonical form, see {@link canonicalUuid}. */
  uuid: z
    .string()
    .regex(
      /^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$/,
      'must be a UUID',
    )
    .transform((u) => canonicalUuid(u))
    .optional(),
  state: VmState,
  disks: z.array(InventoryDisk),
  nics: z.array(InventoryNic),
  /** The libvirt domain XML. */
  template: z
    .string()
    .refine(
      (t) => new TextEncoder().encode(t).length <= MAX_TEMPLATE_BYTES,
      `must be at most ${MAX_TEMPLATE_BYTES} bytes`,
    ),
  /**
   * BACKUP_CONFIG pairs the runner read from the domain's Lifeboat metadata element, if any
   * (validated with `core/backup-config.ts` `parse` by the API, since that needs the disks).
   */
  backupConfig: z.record(z.string(), textValue).optional(),
  /**
   * `<lifeboat:owner user group/>` from the same element: the VM's owner at first sight only.
   * Untrusted (whoever defines the domain writes it): any text is accepted here and the API
   * checks the names, ignoring a bad one with a warning rather than refusing the whole report.
   */
  owner: z.object({ user: z.string().max(1024), group: z.string().max(1024).optional() }).optional(),
});
export type InventoryVm = z.infer<typeof InventoryVm>;

/** `PUT /hosts/{id}/inventory`: every domain the runner sees; a VM is its domain UUID. */
export const InventoryBody = z
  .strictObject({
    vms: z.array(InventoryVm),
    runnerVersion: RunnerVersion.optional(),
  })
  .refine((b) => new Set(b.vms.map((v) => v.domain)).size === b.vms.length, {
    message: 'domain names must be unique',
    path: ['vms'],
  })
  .refine(
    (b) => {
      const uuids = b.vms.flatMap((v) => (v.uuid ? [v.uuid] : []));
      return new Set(uuids).size === uuids.length;
    },
    { message: 'domain UUIDs must be unique', path: ['vms'] },
  );
export type InventoryBody = z.infer<typeof InventoryBody>;

/** `PUT /vms/{id}/backup-config`: updateconf; keys and values checked by `core/backup-config.ts`. */
export const BackupConfigBody = z.strictObject({
  pairs: z.record(z.string(), textValue),
  append: z.boolean().default(false),
});
export type BackupConfigBody = z.infer<typeof BackupConfigBody>;

/** `POST /vms/{id}/backup` */
export const BackupRequestBody = z.strictObject({
  datastoreId: id,
  /** Start a new increment chain (a FULL backup) even when MODE=INCREMENT. */
  reset: z.boolean().default(false),
  /** Dispatch priority 0-99; users up to 49 (the API checks the role). */
  priority: z.number().int().min(0).max(99).optional(),
});
export type BackupRequestBody = z.infer<typeof BackupRequestBody>;

/** `POST /datastores`: attributes checked against the driver's table (secrets included). */
export const CreateDatastoreBody = z
  .strictObject({
    name,
    driver: DatastoreDriverName,
    attributes: z.record(z.string(), textValue).default({}),
  })
  .superRefine((body, ctx) => {
    for (const issue of attributeIssues(body.driver, body.attributes, '')) {
      ctx.addIssue({ code: 'custom', path: ['attributes', issue.path], message: issue.message });
    }
  });
export type CreateDatastoreBody = z.infer<typeof CreateDatastoreBody>;

/**
 * `PATCH /datastores/{id}`: the attributes to change; an empty value removes one. Checked
 * against the driver with `mergeAttributes` of `core/datastore-attributes.ts` (needs the driver).
 */
export const UpdateDatastoreBody = z.strictObject({
  name: name.optional(),
  attributes: z.record(z.string(), textValue).default({}),
});
export type UpdateDatastoreBody = z.infer<typeof UpdateDatastoreBody>;

/** A restored VM's name: a libvirt domain name and a file name prefix (`<name>-disk-<n>.qcow2`). */
const vmName = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/, 'must be letters, digits and ._+- (at most 128)')
  .superRefine((n, ctx) => {
    // Digits only, or a UUID: virsh would act on another domain's id or UUID.
    const problem = domainNameProblem(n);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * `POST /images/{id}/restore`, as `lifeboat image restore` options. Rules across fields (in-place
 * needs its confirmation, a single disk defines no VM, ...) are in {@link checkRestoreOptions}.
 */
export const RestoreRequestBody = z.strictObject({
  /** Name of the new VM (default `<vmid>-<imageid>`); its disks are `<name>-disk-<n>`. */
  name: vmName.optional(),
  /** Do not keep the IP addresses (NICs and networks stay). */
  noIp: z.boolean().default(false),
  /** Do not keep the NICs at all. */
  noNic: z.boolean().default(false),
  /** Restore the chain up to this increment (default: the last one). */
  incrementId: id.optional(),
  /** Restore only this disk (no VM template). */
  diskId: id.optional(),
  /** Host whose runner writes the disks (default: the VM's host). Naming one defines the VM there. */
  hostId: id.optional(),
  /**
   * Folder on that host for the disks (default: `<name>` under the host's first restore root);
   * relative: under that root. Absolute: under a restore root, or anywhere for an admin.
   */
  targetDir: PlainHostPath.optional(),
  /** Define the restored VM on the host (default: when `hostId` is given without `diskId`, or `start`). */
  define: z.boolean().optional(),
  /** Start the defined VM. */
  start: z.boolean().optional(),
  /** Restore over the VM's own disks (it must be POWEROFF); needs `confirmOverwrite`. */
  inPlace: z.boolean().optional(),
  /** The explicit confirmation an in-place restore needs. */
  confirmOverwrite: z.boolean().optional(),
  /**
   * Ceph pool of the host the rbd disks are restored into, as new images `<name>-disk-<id>`
   * (the host's RESTORE_POOLS must name it); not with targetDir, define, start or inPlace.
   */
  pool: PoolName.optional(),
  priority: z.number().int().min(0).max(99).optional(),
});
export type RestoreRequestBody = z.infer<typeof RestoreRequestBody>;

/**
 * Rules across the fields of a restore request; throws a ValidationError naming the field.
 * Answers whether the restored VM is defined on its host.
 */
export function checkRestoreOptions(body: RestoreRequestBody): { define: boolean } {
  // Naming a host (or asking to start) defines the VM there, unless one disk only is restored.
  const define =
    body.define ?? (body.start === true || (body.hostId !== undefined && body.diskId === undefined));
  if (body.pool !== undefined) {
    const clash = (['targetDir', 'define', 'start', 'inPlace'] as const).find((k) => body[k] !== undefined);
    if (clash) throw new ValidationError(`${clash}: not with pool (a pool receives disk images only)`);
    return { define: false };
  }
  if (body.inPlace) {
    if (body.confirmOverwrite !== true) {
      throw new ValidationError(
        "inPlace: overwrites the VM's own disks; confirm with confirmOverwrite: true (--yes-overwrite)",
      );
    }
    const clash = (['name', 'targetDir', 'hostId'] as const).find((k) => body[k] !== undefined);
    if (clash)
      throw new ValidationError(`${clash}: not with inPlace (the VM keeps its name, host and disks)`);
    if (body.noIp || body.noNic)
      throw new ValidationError('noIp/noNic: not with inPlace (the VM keeps its template)');
    if (body.define) throw new ValidationError('define: not with inPlace (the VM is already defined)');
    return { define: false };
  }
  if (body.confirmOverwrite) throw new ValidationError('confirmOverwrite: only with inPlace');
  if (body.diskId !== undefined && define) {
    throw new ValidationError(
      `diskId: cannot restore a VM from a single-disk backup (disk ${body.diskId} restores a disk image only)`,
    );
  }
  if (body.start && !define) throw new ValidationError('start: only when the VM is defined on a host');
  return { define };
}

/** `GET /images?vmId=&datastoreId=` */
export const ImageListQuery = z.strictObject({
  vmId: IdText.optional(),
  datastoreId: IdText.optional(),
});
export type ImageListQuery = z.infer<typeof ImageListQuery>;

/** `GET /vms?hostId=` */
export const VmListQuery = z.strictObject({ hostId: IdText.optional() });
export type VmListQuery = z.infer<typeof VmListQuery>;

/** `GET /executions?vmId=&state=` */
export const ExecutionListQuery = z.strictObject({
  vmId: IdText.optional(),
  state: ExecutionState.optional(),
});
export type ExecutionListQuery = z.infer<typeof ExecutionListQuery>;

function describe(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (path ? `${path}.${k}` : k));
    return `${keys.join(', ')}: unknown field`;
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return `${path || 'body'}: required`;
  return `${path || 'body'}: ${issue.message.replace(/^Invalid input: /, '')}`;
}

/**
 * Validates `value` with `schema` and returns the parsed (defaults applied) value, or throws a
 * ValidationError with a one-line message naming the first bad field: `datastoreId: required`,
 * `attributes.RESTIC_CONNECTIONS: must be an integer from 1 to 64 (got "99")`, `foo: unknown field`.
 * Input values never appear in the message except where a check quotes them on purpose (never
 * for secrets: those checks do not quote).
 */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {}, {
    // zod keeps `input` on issues only when asked; `describe` needs it to tell "required".
    reportInput: true,
  });
  if (result.success) return result.data;
  const [first] = result.error.issues;
  throw new ValidationError(first ? describe(first) : 'invalid input');
}

/** BACKUP_CONFIG defaults of a job: checked by the API with `core/backup-config.ts` (and RESET). */
const jobConfig = z.record(z.string(), textValue);

/** `POST /jobs`: `lifeboat backupjob create`. */
export const CreateJobBody = z.strictObject({
  name,
  vmIds: z.array(id).min(1).max(1000),
  datastoreId: id,
  priority: z.number().int().min(0).max(99).default(0),
  execution: z
    .enum(['SEQUENTIAL', 'PARALLEL', 'sequential', 'parallel'])
    .transform((v) => v.toUpperCase() as 'SEQUENTIAL' | 'PARALLEL')
    .default('SEQUENTIAL'),
  config: jobConfig.default({}),
});
export type CreateJobBody = z.infer<typeof CreateJobBody>;

/** `PATCH /jobs/{id}`: the fields to change; `config` pairs are merged (an empty value removes one). */
export const UpdateJobBody = z.strictObject({
  name: name.optional(),
  vmIds: z.array(id).min(1).max(1000).optional(),
  datastoreId: id.optional(),
  priority: z.number().int().min(0).max(99).optional(),
  execution: z
    .enum(['SEQUENTIAL', 'PARALLEL', 'sequential', 'parallel'])
    .transform((v) => v.toUpperCase() as 'SEQUENTIAL' | 'PARALLEL')
    .optional(),
  config: jobConfig.optional(),
});
export type UpdateJobBody = z.infer<typeof UpdateJobBody>;

/**
 * `POST /vms/{id}/schedules`, `POST /jobs/{id}/schedules` and `POST /datastores/{id}/schedules`:
 * a scheduled backup, or a datastore's scheduled verify. The schedule fields are checked by
 * `core/schedule.ts` `parseSchedule`, the action against the target by
 * `core/schedule-actions.ts` (absent: the target's own, backup or verify); a VM's needs
 * `datastoreId`.
 */
export const CreateScheduleBody = z.strictObject({
  action: ScheduleActionKind.optional(),
  datastoreId: id.optional(),
  reset: z.boolean().default(false),
  priority: z.number().int().min(0).max(99).optional(),
  /** Images per run, least recently verified first: a drill's (default 1, at most 20), a verify's (default every image). */
  sample: z.number().int().min(1).max(MAX_VERIFY_SAMPLE).optional(),
  time: z.string().min(1),
  repeat: z.string().min(1).optional(),
  days: z.array(z.number().int()).min(1).optional(),
  end: z.union([z.number(), z.string().min(1)]).optional(),
});
export type CreateScheduleBody = z.infer<typeof CreateScheduleBody>;

/** `PUT /{vms,datastores,images,jobs}/{id}/owner`: a new owner, a new group, or both (`chown`). */
export const ChownBody = z
  .strictObject({ owner: UserName.optional(), group: GroupName.optional() })
  .refine((b) => b.owner !== undefined || b.group !== undefined, {
    message: 'name an owner, a group or both',
  });

/** `PUT /{vms,datastores,images,jobs}/{id}/permissions`: octal like `onevm chmod` (`chmod`). */
export const ChmodBody = z.strictObject({
  permissions: z.string().refine(isOctalPermissions, OCTAL_RULE),
});
