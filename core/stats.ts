/**
 * The figures of `lifeboat stats` (GET /stats): backups succeeded and failed over the last 24
 * hours and 7 days with their bytes and median duration, each datastore's capacity, the VMs
 * missing their scheduled backup (core/missed-backups.ts) and the images whose last verification
 * failed. The same figures the Lambdas publish as CloudWatch metrics. Pure: computed from the
 * tables' records.
 */
import type { MissedBackup } from './missed-backups.ts';
import type { Datastore, Execution } from './model.ts';

const HOUR = 3_600_000;

/** The windows reported, by name. */
export const STATS_WINDOWS = { '24h': 24 * HOUR, '7d': 7 * 24 * HOUR } as const;
export type StatsWindow = keyof typeof STATS_WINDOWS;

/** Backups that ended within one window. */
export interface BackupFigures {
  succeeded: number;
  /** Ended any other way: FAILED, TIMED_OUT or ABORTED (as the BackupsFailed metric counts). */
  failed: number;
  /** Bytes stored by the successful ones. */
  bytes: number;
  /** Median duration of the successful ones (start to end), null when there is none. */
  medianSeconds: number | null;
}

/** A datastore's capacity as last measured (absent figures: unknown). */
export interface DatastoreFigures {
  id: number;
  name: string;
  totalBytes?: number;
  freeBytes?: number;
  usedBytes?: number;
  monitoredAt?: string;
}

/** Everything `lifeboat stats` prints. */
export interface Stats {
  at: string;
  backups: Record<StatsWindow, BackupFigures>;
  datastores: DatastoreFigures[];
  missedBackups: MissedBackup[];
  /** Images whose last verification FAILED (images without a verifyState are not counted). */
  verifyFailures: number;
}

/** What the figures are computed from. */
export interface StatsInput {
  now: Date;
  /** Backup executions (others are ignored); only ended ones count. */
  executions: readonly Pick<Execution, 'kind' | 'state' | 'startedAt' | 'endedAt' | 'bytesDone'>[];
  /** Images, with their verifyState when verification recorded one. */
  images: readonly { id: number; verifyState?: unknown }[];
  datastores: readonly Pick<
    Datastore,
    'id' | 'name' | 'totalBytes' | 'freeBytes' | 'usedBytes' | 'monitoredAt'
  >[];
  missed: readonly MissedBackup[];
}

/** The median of `values` (the mean of the two middle ones for an even count), null when empty. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function figures(executions: StatsInput['executions'], since: number, now: number): BackupFigures {
  let succeeded = 0;
  let failed = 0;
  let bytes = 0;
  const seconds: number[] = [];
  for (const e of executions) {
    if (e.kind !== 'backup' || e.endedAt === undefined) continue;
    const ended = Date.parse(e.endedAt);
    if (!(ended > since && ended <= now)) continue;
    if (e.state === 'SUCCEEDED') {
      succeeded++;
      bytes += e.bytesDone;
      if (e.startedAt !== undefined) {
        const took = (ended - Date.parse(e.startedAt)) / 1000;
        if (Number.isFinite(took) && took >= 0) seconds.push(took);
      }
    } else if (e.state !== 'QUEUED' && e.state !== 'RUNNING') failed++;
  }
  return { succeeded, failed, bytes, medianSeconds: median(seconds) };
}

/** The figures at `input.now`. */
export function computeStats(input: StatsInput): Stats {
  const now = input.now.getTime();
  const backups = Object.fromEntries(
    (Object.entries(STATS_WINDOWS) as [StatsWindow, number][]).map(([name, span]) => [
      name,
      figures(input.executions, now - span, now),
    ]),
  ) as Record<StatsWindow, BackupFigures>;
  const datastores = [...input.datastores]
    .sort((a, b) => a.id - b.id)
    .map((d) => ({
      id: d.id,
      name: d.name,
      ...(d.totalBytes !== undefined && { totalBytes: d.totalBytes }),
      ...(d.freeBytes !== undefined && { freeBytes: d.freeBytes }),
      ...(d.usedBytes !== undefined && { usedBytes: d.usedBytes }),
      ...(d.monitoredAt !== undefined && { monitoredAt: d.monitoredAt }),
    }));
  return {
    at: input.now.toISOString(),
    backups,
    datastores,
    missedBackups: [...input.missed],
    verifyFailures: input.images.filter((i) => i.verifyState === 'FAILED').length,
  };
}
