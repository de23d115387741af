/**
 * CloudWatch metrics as Embedded Metric Format lines: one JSON object per metric set, printed on
 * stdout, which CloudWatch Logs turns into metrics of the `Lifeboat` namespace (no API call, no
 * permission, nothing lost when CloudWatch is slow). Locally the same lines land in the logs.
 *
 * Each set is published twice: by its dimensions (a datastore's figures) and without any (the
 * deployment's totals, which the alarms of infra/alarms.ts watch).
 */

/** The namespace of every Lifeboat metric. */
export const NAMESPACE = 'Lifeboat';

/** Units used (CloudWatch's names). */
export type MetricUnit = 'Count' | 'Bytes' | 'Seconds';

/** The metric names, one place, shared with infra/alarms.ts. */
export const METRIC = {
  backupsSucceeded: 'BackupsSucceeded',
  backupsFailed: 'BackupsFailed',
  backupBytes: 'BackupBytes',
  backupSeconds: 'BackupSeconds',
  datastoreFreeBytes: 'DatastoreFreeBytes',
  verifyFailures: 'VerifyFailures',
  missedBackups: 'MissedBackups',
  notifyFailures: 'NotifyFailures',
} as const;

/** One value of a metric set. */
export interface MetricValue {
  name: string;
  value: number;
  unit: MetricUnit;
}

/** Small, bounded dimensions only (a datastore id, never a VM name). */
export type Dimensions = Record<string, string>;

/**
 * The EMF document of `metrics` with `dimensions` at `now` (epoch ms): the values as members of
 * the root, named in one MetricDirective with each unit.
 */
export function emfDocument(metrics: readonly MetricValue[], dimensions: Dimensions = {}, now = Date.now()) {
  const keys = Object.keys(dimensions);
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: NAMESPACE,
          // With dimensions, also the aggregate (an empty set): the deployment-wide figure.
          Dimensions: keys.length > 0 ? [keys, []] : [[]],
          Metrics: metrics.map((m) => ({ Name: m.name, Unit: m.unit })),
        },
      ],
    },
    ...dimensions,
    ...Object.fromEntries(metrics.map((m) => [m.name, m.value])),
  };
}

/** Print one EMF line (nothing when there is no metric or a value is not a finite number). */
export function emitMetrics(
  metrics: readonly MetricValue[],
  dimensions: Dimensions = {},
  now = Date.now(),
): void {
  const values = metrics.filter((m) => Number.isFinite(m.value));
  if (values.length === 0) return;
  process.stdout.write(`${JSON.stringify(emfDocument(values, dimensions, now))}\n`);
}

/** How a backup ended, as its metrics tell it. */
export interface BackupMetrics {
  datastoreId?: number;
  succeeded: boolean;
  /** Bytes the backup stored (a success). */
  bytes?: number;
  /** From its start to its end, when it started. */
  seconds?: number;
}

const datastoreDimension = (id: number | undefined): Dimensions =>
  id === undefined ? {} : { Datastore: String(id) };

/** BackupsSucceeded or BackupsFailed (the other 0, so both series exist), BackupBytes, BackupSeconds. */
export function backupEndedMetrics(backup: BackupMetrics, now = Date.now()): void {
  const metrics: MetricValue[] = [
    { name: METRIC.backupsSucceeded, value: backup.succeeded ? 1 : 0, unit: 'Count' },
    { name: METRIC.backupsFailed, value: backup.succeeded ? 0 : 1, unit: 'Count' },
  ];
  if (backup.succeeded && backup.bytes !== undefined)
    metrics.push({ name: METRIC.backupBytes, value: backup.bytes, unit: 'Bytes' });
  if (backup.seconds !== undefined && backup.seconds >= 0)
    metrics.push({ name: METRIC.backupSeconds, value: backup.seconds, unit: 'Seconds' });
  emitMetrics(metrics, datastoreDimension(backup.datastoreId), now);
}

/** DatastoreFreeBytes of a capacity sample (nothing when FREE is unknown: never 0). */
export function datastoreFreeMetric(datastoreId: number, freeBytes: number | null | undefined): void {
  if (freeBytes === null || freeBytes === undefined) return;
  emitMetrics([{ name: METRIC.datastoreFreeBytes, value: freeBytes, unit: 'Bytes' }], {
    Datastore: String(datastoreId),
  });
}

/** VerifyFailures: `count` verifications (of images on `datastoreId`) that found a fault. */
export function verifyFailureMetric(datastoreId: number | undefined, count = 1): void {
  emitMetrics(
    [{ name: METRIC.verifyFailures, value: count, unit: 'Count' }],
    datastoreDimension(datastoreId),
  );
}

/** MissedBackups: how many VMs are missing their scheduled backup now (a gauge, every check). */
export function missedBackupsMetric(count: number): void {
  emitMetrics([{ name: METRIC.missedBackups, value: count, unit: 'Count' }]);
}

/** NotifyFailures: a notification that could not be delivered. */
export function notifyFailureMetric(): void {
  emitMetrics([{ name: METRIC.notifyFailures, value: 1, unit: 'Count' }]);
}
