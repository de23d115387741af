/**
 * BACKUP_CONFIG: the per-VM backup settings of the reference schema (upstream Backups.h).
 *
 * The stored record holds upper-case keys and string values, exactly as the reference schema,
 * and only the user keys someone set explicitly (plus the runtime keys Lifeboat manages): the
 * defaults are applied when reading ({@link effectiveConfig}, {@link withDefaults}), so that
 * `update(..., { append: true })` can tell a key the user set from a default.
 * An empty value means "not set": `KEEP_LAST=` goes back to keeping every backup.
 */
import { ValidationError } from './errors.ts';
import { type GfsPolicy, hasPeriodRules } from './gfs.ts';
import type { BackupConfigRecord } from './model.ts';

/** Keys users may set (template metadata, `PUT /vms/{id}/backup-config`, backup jobs). */
export const USER_KEYS = [
  'KEEP_LAST',
  'KEEP_HOURLY',
  'KEEP_DAILY',
  'KEEP_WEEKLY',
  'KEEP_MONTHLY',
  'KEEP_YEARLY',
  'BACKUP_VOLATILE',
  'FS_FREEZE',
  'MODE',
  'INCREMENT_MODE',
  'DISK_IDS',
] as const;
export type UserKey = (typeof USER_KEYS)[number];

/** The GFS retention keys (core/gfs.ts), beside KEEP_LAST. */
const PERIOD_KEYS: readonly UserKey[] = [
  'KEEP_HOURLY',
  'KEEP_DAILY',
  'KEEP_WEEKLY',
  'KEEP_MONTHLY',
  'KEEP_YEARLY',
];

/**
 * Keys Lifeboat itself maintains while backups run; users may not set them. LAST_BACKUP_ID and
 * LAST_BACKUP_SIZE name the VM's last stored backup (driver id, bytes) from its commit on.
 */
export const RUNTIME_KEYS = [
  'LAST_DATASTORE_ID',
  'LAST_BACKUP_ID',
  'LAST_BACKUP_SIZE',
  'LAST_INCREMENT_ID',
  'INCREMENTAL_BACKUP_ID',
  'ACTIVE_FLATTEN',
  'BACKUP_JOB_ID',
] as const;
export type RuntimeKey = (typeof RUNTIME_KEYS)[number];

export const FS_FREEZE_VALUES = ['NONE', 'AGENT', 'SUSPEND'] as const;
export const MODE_VALUES = ['FULL', 'INCREMENT'] as const;
export const INCREMENT_MODE_VALUES = ['CBT', 'SNAPSHOT'] as const;
export const YES_NO = ['YES', 'NO'] as const;

export type FsFreeze = (typeof FS_FREEZE_VALUES)[number];
export type BackupModeName = (typeof MODE_VALUES)[number];
export type IncrementMode = (typeof INCREMENT_MODE_VALUES)[number];

/** The defaults of every user key, as stored strings (empty = unset: keep all, all disks). */
export const BACKUP_CONFIG_DEFAULTS: Readonly<Record<UserKey, string>> = {
  KEEP_LAST: '',
  KEEP_HOURLY: '',
  KEEP_DAILY: '',
  KEEP_WEEKLY: '',
  KEEP_MONTHLY: '',
  KEEP_YEARLY: '',
  BACKUP_VOLATILE: 'NO',
  FS_FREEZE: 'NONE',
  MODE: 'FULL',
  INCREMENT_MODE: 'CBT',
  DISK_IDS: '',
};

/** The typed view of a BACKUP_CONFIG record, defaults applied. */
export interface EffectiveConfig {
  /** Number of backups to keep; null = keep all (empty or 0). */
  keepLast: number | null;
  /**
   * GFS retention (core/gfs.ts) when any KEEP_HOURLY..KEEP_YEARLY is set, KEEP_LAST as its
   * `last`; null = KEEP_LAST alone.
   */
  gfs: GfsPolicy | null;
  backupVolatile: boolean;
  fsFreeze: FsFreeze;
  mode: BackupModeName;
  incrementMode: IncrementMode;
  /** Disk ids to back up; null = every (non-volatile unless backupVolatile) disk. */
  diskIds: number[] | null;
}

/** Input pairs as they come from a client or a template: any key case, string or number values. */
export type ConfigPairs = Readonly<Record<string, string | number>>;

export interface ParseOptions {
  /** Whether every disk of the VM supports incremental backups; MODE=INCREMENT needs it. */
  canIncrement: boolean;
}

export interface UpdateOptions extends ParseOptions {
  /** true: only add keys not already set; false (default): replace the keys given, keep the rest. */
  append?: boolean;
}

function oneOf(key: string, allowed: readonly string[], raw: string): string {
  const value = raw.toUpperCase();
  if (!allowed.includes(value)) {
    throw new ValidationError(`${key} must be one of ${allowed.join(', ')} (got "${raw}")`);
  }
  return value;
}

function nonNegativeInt(key: string, raw: string): number {
  if (!/^\d{1,9}$/.test(raw)) {
    throw new ValidationError(`${key} must be a non-negative integer (got "${raw}")`);
  }
  return Number(raw);
}

function diskIdList(raw: string): number[] {
  const parts = raw.split(',').map((p) => p.trim());
  const ids = parts.map((p) => {
    if (!/^\d{1,9}$/.test(p)) {
      throw new ValidationError(`DISK_IDS must be a comma-separated list of disk ids (got "${raw}")`);
    }
    return Number(p);
  });
  return [...new Set(ids)].sort((a, b) => a - b);
}

/** Validates one user value and returns its canonical stored form ('' = unset). */
function normalizeValue(key: UserKey, raw: string): string {
  if (raw === '') return '';
  switch (key) {
    case 'KEEP_LAST':
    case 'KEEP_HOURLY':
    case 'KEEP_DAILY':
    case 'KEEP_WEEKLY':
    case 'KEEP_MONTHLY':
    case 'KEEP_YEARLY':
      return String(nonNegativeInt(key, raw));
    case 'BACKUP_VOLATILE':
      return oneOf(key, YES_NO, raw);
    case 'FS_FREEZE':
      return oneOf(key, FS_FREEZE_VALUES, raw);
    case 'MODE':
      return oneOf(key, MODE_VALUES, raw);
    case 'INCREMENT_MODE':
      return oneOf(key, INCREMENT_MODE_VALUES, raw);
    case 'DISK_IDS':
      return diskIdList(raw).join(',');
  }
}

function isUserKey(key: string): key is UserKey {
  return (USER_KEYS as readonly string[]).includes(key);
}

function isRuntimeKey(key: string): key is RuntimeKey {
  return (RUNTIME_KEYS as readonly string[]).includes(key);
}

/**
 * Validates user pairs and returns them normalized: upper-case keys, canonical upper-case values,
 * empty values kept as '' (meaning "unset"). Throws ValidationError naming the key on the first
 * problem: unknown key, runtime key, bad value, the same key twice in different cases, or
 * MODE=INCREMENT when a disk cannot increment.
 */
export function parse(input: ConfigPairs, options: ParseOptions): Partial<Record<UserKey, string>> {
  const out: Partial<Record<UserKey, string>> = {};
  for (const [rawKey, rawValue] of Object.entries(input)) {
    const key = rawKey.trim().toUpperCase();
    if (isRuntimeKey(key)) {
      throw new ValidationError(`BACKUP_CONFIG key "${key}" is managed by Lifeboat and cannot be set`);
    }
    if (!isUserKey(key)) {
      throw new ValidationError(`unknown BACKUP_CONFIG key "${key}"; allowed: ${USER_KEYS.join(', ')}`);
    }
    if (key in out) {
      throw new ValidationError(`BACKUP_CONFIG key ${key} given more than once`);
    }
    out[key] = normalizeValue(key, String(rawValue).trim());
  }
  if (out.MODE === 'INCREMENT' && !options.canIncrement) {
    throw new ValidationError('MODE INCREMENT needs every disk of the VM to support incremental backups');
  }
  return out;
}

/**
 * updateconf: applies user pairs to a stored record and returns the new stored record.
 * append=true only adds keys not already set; append=false replaces the keys given and keeps the
 * rest. Runtime keys of `current` are always kept. An empty value unsets a key (append: ignored).
 * Validation happens before anything changes, so bad input changes nothing.
 */
export function update(
  current: BackupConfigRecord,
  pairs: ConfigPairs,
  options: UpdateOptions,
): BackupConfigRecord {
  const given = parse(pairs, options);
  const next: BackupConfigRecord = { ...current };
  for (const [key, value] of Object.entries(given)) {
    const isSet = next[key] !== undefined && next[key] !== '';
    if (options.append) {
      if (!isSet && value !== '') next[key] = value;
    } else if (value === '') {
      delete next[key];
    } else {
      next[key] = value;
    }
  }
  return next;
}

/**
 * A VM's record with a backup job's BACKUP_CONFIG defaults under it: each user key the VM leaves
 * unset (or empty) takes the job's value. Runtime keys and the VM's own values are kept.
 */
export function underDefaults(record: BackupConfigRecord, defaults: BackupConfigRecord): BackupConfigRecord {
  const out: BackupConfigRecord = { ...record };
  for (const key of USER_KEYS) {
    const fallback = defaults[key];
    if ((out[key] === undefined || out[key] === '') && fallback !== undefined && fallback !== '') {
      out[key] = fallback;
    }
  }
  return out;
}

/** The user keys of a record with every default filled in (for display); runtime keys kept. */
export function withDefaults(record: BackupConfigRecord): BackupConfigRecord {
  const out: BackupConfigRecord = { ...record };
  for (const key of USER_KEYS) {
    // The GFS keys show once set: most VMs have none, and their unset value means nothing.
    if (PERIOD_KEYS.includes(key)) continue;
    if (out[key] === undefined || out[key] === '') out[key] = BACKUP_CONFIG_DEFAULTS[key];
  }
  return out;
}

/** The typed view of a stored record, defaults applied. Throws ValidationError on a corrupt value. */
export function effectiveConfig(record: BackupConfigRecord): EffectiveConfig {
  const value = (key: UserKey): string => {
    const raw = record[key];
    return raw === undefined || raw === '' ? BACKUP_CONFIG_DEFAULTS[key] : normalizeValue(key, raw);
  };
  const keepLast = value('KEEP_LAST');
  const diskIds = value('DISK_IDS');
  const count = (key: UserKey) => Number(value(key) || 0);
  const gfs: GfsPolicy = {
    last: count('KEEP_LAST'),
    hourly: count('KEEP_HOURLY'),
    daily: count('KEEP_DAILY'),
    weekly: count('KEEP_WEEKLY'),
    monthly: count('KEEP_MONTHLY'),
    yearly: count('KEEP_YEARLY'),
  };
  return {
    keepLast: keepLast === '' || keepLast === '0' ? null : Number(keepLast),
    gfs: hasPeriodRules(gfs) ? gfs : null,
    backupVolatile: value('BACKUP_VOLATILE') === 'YES',
    fsFreeze: value('FS_FREEZE') as FsFreeze,
    mode: value('MODE') as BackupModeName,
    incrementMode: value('INCREMENT_MODE') as IncrementMode,
    diskIds: diskIds === '' ? null : diskIds.split(',').map(Number),
  };
}

/**
 * Sets or clears runtime keys (LAST_BACKUP_ID, INCREMENTAL_BACKUP_ID, ...) for the task Lambdas.
 * A null value removes the key. User keys are refused: they change through {@link update} only.
 */
export function setRuntime(
  record: BackupConfigRecord,
  values: Partial<Record<RuntimeKey, string | number | null>>,
): BackupConfigRecord {
  const next: BackupConfigRecord = { ...record };
  for (const [key, value] of Object.entries(values)) {
    if (!isRuntimeKey(key)) throw new ValidationError(`"${key}" is not a runtime BACKUP_CONFIG key`);
    if (value === null || value === undefined) delete next[key];
    else next[key] = String(value);
  }
  return next;
}
