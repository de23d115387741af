/**
 * Missed backups: a VM with a repeating scheduled backup (its own schedule, or its backup job's)
 * whose last successful backup is older than twice the schedule's period is missed. Time is
 * counted from the last success, or from when the schedule began when there is none or it is
 * older (a schedule made yesterday for a VM last backed up a year ago is not missed at once).
 * With several schedules, the shortest period counts. Pure: the dispatcher's periodic check
 * (functions/operations/missed-backups.ts) and `lifeboat stats` feed it the tables.
 */
import type { Image, ScheduledAction } from './model.ts';
import { nextRuns, type ScheduleSpec } from './schedule.ts';

/** A VM found missing its scheduled backup. */
export interface MissedBackup {
  vmId: number;
  /** The schedule whose period counts (the shortest of the VM's). */
  scheduleId: number;
  /** That schedule's period, in seconds. */
  periodSeconds: number;
  /** The VM's last successful backup, absent when it has none. */
  lastSuccessAt?: string;
  /** When it became missed: the last success (or the schedule's start) plus two periods. */
  missedSince: string;
}

/** Runs looked at to find a schedule's period: enough for a weekly or monthly pattern's longest gap. */
const SAMPLE_RUNS = 12;

/**
 * The period of a repeating schedule around `now`: the longest gap between consecutive runs of
 * its pattern (a weekly schedule on Monday and Tuesday: 6 days), ignoring its end (an ending
 * schedule still had that rhythm). Null for a one-off schedule.
 */
export function schedulePeriodMs(spec: ScheduleSpec, now: Date): number | null {
  if (!spec.repeat) return null;
  const pattern: ScheduleSpec = { start: spec.start, repeat: spec.repeat };
  const runs = nextRuns(pattern, 0, now, SAMPLE_RUNS);
  let longest = 0;
  for (let i = 1; i < runs.length; i++) {
    longest = Math.max(longest, (runs[i] as Date).getTime() - (runs[i - 1] as Date).getTime());
  }
  return longest > 0 ? longest : null;
}

/**
 * When each VM last backed up successfully, from its images: the newest committed point of an
 * increment chain (a chain LOCKED by a running backup keeps its earlier points), else a READY
 * image's creation time.
 */
export function lastSuccessfulBackups(
  images: readonly Pick<Image, 'vmId' | 'state' | 'createdAt' | 'increments'>[],
): Map<number, string> {
  const last = new Map<number, string>();
  for (const image of images) {
    const points = image.increments.map((i) => i.date);
    let at: string | undefined;
    if (points.length > 0 && (image.state === 'READY' || image.state === 'LOCKED')) at = points.sort().at(-1);
    else if (image.state === 'READY') at = image.createdAt;
    if (at === undefined) continue;
    const known = last.get(image.vmId);
    if (known === undefined || Date.parse(at) > Date.parse(known)) last.set(image.vmId, at);
  }
  return last;
}

/** What the rule reads. */
export interface MissedInput {
  now: Date;
  /** Every schedule (over ones and one-offs are skipped). */
  schedules: readonly (Pick<
    ScheduledAction,
    'id' | 'target' | 'targetId' | 'spec' | 'nextRunAt' | 'createdAt'
  > &
    Partial<Pick<ScheduledAction, 'action'>>)[];
  /** The VMs of each backup job, by job id (a job's schedule covers them all). */
  jobVms: ReadonlyMap<number, readonly number[]>;
  /** Each VM's last successful backup ({@link lastSuccessfulBackups}). */
  lastSuccess: ReadonlyMap<number, string>;
  /** VMs that exist: a schedule of a deleted VM misses nothing. */
  vmIds?: ReadonlySet<number>;
}

/** The VMs missing their scheduled backup at `now`, by VM id. */
export function missedBackups(input: MissedInput): MissedBackup[] {
  const now = input.now.getTime();
  const shortest = new Map<number, { scheduleId: number; period: number; began: number }>();
  for (const schedule of input.schedules) {
    // Over (no next run) or one-off: nothing is expected of it any more.
    if (schedule.nextRunAt === undefined || !schedule.spec.repeat) continue;
    // Only backups are missed: a datastore's verify (its id is no VM's nor job's) backs up nothing.
    if (schedule.target === 'datastore' || (schedule.action ?? 'backup') !== 'backup') continue;
    const period = schedulePeriodMs(schedule.spec, input.now);
    if (period === null) continue;
    const began = Math.max(Date.parse(schedule.spec.start), Date.parse(schedule.createdAt));
    const vms = schedule.target === 'vm' ? [schedule.targetId] : (input.jobVms.get(schedule.targetId) ?? []);
    for (const vmId of vms) {
      if (input.vmIds && !input.vmIds.has(vmId)) continue;
      const known = shortest.get(vmId);
      if (!known || period < known.period) shortest.set(vmId, { scheduleId: schedule.id, period, began });
    }
  }
  const missed: MissedBackup[] = [];
  for (const [vmId, { scheduleId, period, began }] of shortest) {
    const lastSuccessAt = input.lastSuccess.get(vmId);
    const from = Math.max(began, lastSuccessAt === undefined ? began : Date.parse(lastSuccessAt));
    const due = from + 2 * period;
    if (now <= due) continue;
    missed.push({
      vmId,
      scheduleId,
      periodSeconds: period / 1000,
      ...(lastSuccessAt !== undefined && { lastSuccessAt }),
      missedSince: new Date(due).toISOString(),
    });
  }
  return missed.sort((a, b) => a.vmId - b.vmId);
}
