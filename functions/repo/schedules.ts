/**
 * Schedules table: scheduled actions of VMs and backup jobs. An active schedule carries
 * `queue = "active"` and sits in the `due` index sorted by `nextRunAt`; a schedule that is over
 * loses `queue` (and `nextRunAt`) and leaves the index, but stays listed until deleted.
 */
import { z } from 'zod';
import { ScheduledAction } from '#core/model.ts';
import { Table } from './table.ts';

/** The partition of the `due` index. */
export const ACTIVE = 'active';

export const ScheduleRecord = ScheduledAction.extend({
  queue: z.literal(ACTIVE).optional(),
  /** Name of its EventBridge Scheduler schedule, when the deployment has one. */
  awsName: z.string().optional(),
});
export type ScheduleRecord = z.infer<typeof ScheduleRecord>;

/** The schedules repository (`Schedule 4 does not exist`). */
export const schedules = new Table('schedules', ScheduleRecord, 'Schedule');

/** Active schedules whose next run is at or before `now`, earliest first. */
export function dueSchedules(now: Date): Promise<ScheduleRecord[]> {
  return schedules.query('due', {
    expression: '#q = :q AND #n <= :now',
    names: { '#q': 'queue', '#n': 'nextRunAt' },
    values: { ':q': ACTIVE, ':now': now.toISOString() },
  });
}

/** The schedules of one VM or job, by id. */
export async function schedulesOf(
  target: ScheduledAction['target'],
  targetId: number,
): Promise<ScheduleRecord[]> {
  const all = await schedules.list({
    expression: '#t = :t AND #i = :i',
    names: { '#t': 'target', '#i': 'targetId' },
    values: { ':t': target, ':i': targetId },
  });
  return all.sort((a, b) => a.id - b.id);
}

/** The schedule as users see it (no index key). */
export function publicSchedule(record: ScheduleRecord): ScheduledAction {
  return ScheduledAction.parse(record);
}
