/**
 * Settings the handlers read from their environment (set by CDK in AWS, by local mode locally).
 * Parsed here once so a bad value fails loudly instead of turning into NaN further down.
 */
import { TABLES, type TableSpec } from './tables.ts';

/** Name of a table: its `TABLE_*` variable, else the local-mode name `lifeboat-<key>`. */
export function tableName(key: TableSpec['key']): string {
  const spec = TABLES.find((t) => t.key === key);
  if (!spec) throw new Error(`unknown table ${key}`);
  return process.env[spec.envVar] || `lifeboat-${key}`;
}

/**
 * The integer setting `name`, `fallback` when unset or empty. Not a whole number, or below `min`
 * (1: a positive integer, unless said), is a deployment error, reported by name.
 */
export function intSetting(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    const wanted = min === 1 ? 'a positive integer' : `a whole number of at least ${min}`;
    throw new Error(`${name} must be ${wanted} (got "${raw}")`);
  }
  return value;
}

/** Limits and timings of the control plane. */
export interface Limits {
  maxBackups: number;
  maxBackupsHost: number;
  heartbeatSeconds: number;
  hostOfflineSeconds: number;
}

/**
 * MAX_BACKUPS (default 5), MAX_BACKUPS_HOST (default 2), HEARTBEAT_SECONDS (default 120),
 * HOST_OFFLINE_SECONDS (default 180).
 */
export function limits(): Limits {
  return {
    maxBackups: intSetting('MAX_BACKUPS', 5),
    maxBackupsHost: intSetting('MAX_BACKUPS_HOST', 2),
    heartbeatSeconds: intSetting('HEARTBEAT_SECONDS', 120),
    hostOfflineSeconds: intSetting('HOST_OFFLINE_SECONDS', 180),
  };
}

/** Prefix of the host queues: host N gets `<prefix>N`. */
export function hostQueuePrefix(): string {
  return process.env.HOST_QUEUE_PREFIX || 'lifeboat-host-';
}

/**
 * ARN of the one dead-letter queue every host queue redrives to (created by the CDK app, by the
 * control plane in local mode). Required: a host queue without a DLQ would lose failing tasks
 * silently, and the alarm watches only this queue.
 */
export function hostDeadLetterQueueArn(): string {
  return required('HOST_DEAD_LETTER_QUEUE_ARN');
}

/** A required variable; its absence is a deployment error, reported by name. */
export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}
