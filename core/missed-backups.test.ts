import { describe, expect, it } from 'vitest';
import { lastSuccessfulBackups, missedBackups, schedulePeriodMs } from './missed-backups.ts';
import type { ScheduleSpec } from './schedule.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = new Date('2026-12-06T12:00:00.000Z'); // a Sunday
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();

function schedule(
  id: number,
  spec: ScheduleSpec,
  target: { target: 'vm' | 'job' | 'datastore'; targetId: number } = { target: 'vm', targetId: id },
  over = false,
) {
  return {
    id,
    ...target,
    spec,
    ...(over ? {} : { nextRunAt: new Date(now.getTime() + HOUR).toISOString() }),
    createdAt: spec.start,
  };
}
const daily = (start = ago(30 * DAY)): ScheduleSpec => ({ start, repeat: { kind: 'daily' } });

describe('schedulePeriodMs', () => {
  it('is the longest gap between runs of the pattern', () => {
    const start = '2026-01-01T02:00:00.000Z';
    expect(schedulePeriodMs({ start, repeat: { kind: 'hourly' } }, now)).toBe(HOUR);
    expect(schedulePeriodMs({ start, repeat: { kind: 'daily' } }, now)).toBe(DAY);
    expect(schedulePeriodMs({ start, repeat: { kind: 'weekly', days: [0] } }, now)).toBe(7 * DAY);
    // Monday and Tuesday: Tuesday to the next Monday is the longest wait.
    expect(schedulePeriodMs({ start, repeat: { kind: 'weekly', days: [1, 2] } }, now)).toBe(6 * DAY);
    expect(schedulePeriodMs({ start, repeat: { kind: 'cron', expression: '0 */6 * * ? *' } }, now)).toBe(
      6 * HOUR,
    );
    // Monthly on the 1st: December to January has 31 days.
    expect(schedulePeriodMs({ start, repeat: { kind: 'monthly', days: [1] } }, now)).toBe(31 * DAY);
    // Its end does not change its rhythm; a one-off has none.
    expect(schedulePeriodMs({ start, repeat: { kind: 'daily' }, end: { count: 1 } }, now)).toBe(DAY);
    expect(schedulePeriodMs({ start }, now)).toBeNull();
  });
});

describe('lastSuccessfulBackups', () => {
  it("takes a chain's newest point, a READY image's creation, never a failed or new image", () => {
    const point = (date: string) => ({ id: 0, type: 'FULL' as const, source: 's', size: 1, date });
    const last = lastSuccessfulBackups([
      { vmId: 1, state: 'READY', createdAt: ago(10 * DAY), increments: [] },
      { vmId: 1, state: 'READY', createdAt: ago(3 * DAY), increments: [] },
      {
        vmId: 2,
        state: 'LOCKED',
        createdAt: ago(9 * DAY),
        increments: [point(ago(9 * DAY)), point(ago(2 * DAY))],
      },
      { vmId: 3, state: 'ERROR', createdAt: ago(HOUR), increments: [] },
      { vmId: 3, state: 'LOCKED', createdAt: ago(HOUR), increments: [] },
    ]);
    expect(Object.fromEntries(last)).toEqual({ 1: ago(3 * DAY), 2: ago(2 * DAY) });
  });
});

describe('missedBackups', () => {
  const jobVms = new Map<number, number[]>();

  it('a daily backup last successful more than two days ago is missed; within two days it is not', () => {
    const missed = missedBackups({
      now,
      schedules: [schedule(1, daily()), schedule(2, daily())],
      jobVms,
      lastSuccess: new Map([
        [1, ago(2 * DAY + 60_000)],
        [2, ago(2 * DAY - 60_000)],
      ]),
    });
    expect(missed).toEqual([
      {
        vmId: 1,
        scheduleId: 1,
        periodSeconds: 86_400,
        lastSuccessAt: ago(2 * DAY + 60_000),
        missedSince: ago(60_000),
      },
    ]);
  });

  it('counts from the schedule start when there is no success, or an older one', () => {
    const young = daily(ago(DAY));
    const old = daily(ago(3 * DAY));
    const missed = missedBackups({
      now,
      schedules: [schedule(1, young), schedule(2, old), schedule(3, young)],
      jobVms,
      lastSuccess: new Map([[3, ago(300 * DAY)]]),
    });
    expect(missed.map((m) => m.vmId)).toEqual([2]);
    expect(missed[0]).not.toHaveProperty('lastSuccessAt');
  });

  it("covers a job's VMs, takes the shortest period, skips one-offs, ended schedules and deleted VMs", () => {
    const weekly: ScheduleSpec = { start: ago(60 * DAY), repeat: { kind: 'weekly', days: [0] } };
    const missed = missedBackups({
      now,
      schedules: [
        schedule(1, weekly, { target: 'job', targetId: 7 }),
        // VM 11 also has its own hourly schedule: 2 hours count, not 2 weeks.
        schedule(2, { start: ago(60 * DAY), repeat: { kind: 'hourly' } }, { target: 'vm', targetId: 11 }),
        schedule(3, { start: ago(60 * DAY) }, { target: 'vm', targetId: 20 }),
        schedule(4, daily(), { target: 'vm', targetId: 21 }, true),
        schedule(5, daily(), { target: 'vm', targetId: 22 }),
      ],
      jobVms: new Map([[7, [10, 11, 12]]]),
      lastSuccess: new Map([
        [10, ago(15 * DAY)],
        [11, ago(3 * HOUR)],
        [12, ago(13 * DAY)],
      ]),
      vmIds: new Set([10, 11, 12, 20, 21]),
    });
    expect(missed.map((m) => [m.vmId, m.scheduleId])).toEqual([
      [10, 1],
      [11, 2],
    ]);
  });

  it("never takes a datastore's scheduled verify for a job's backups (ids of different tables)", () => {
    const missed = missedBackups({
      now,
      schedules: [{ ...schedule(1, daily(), { target: 'datastore', targetId: 7 }), action: 'verify' }],
      // Job 7 exists, with VMs never backed up: a job schedule 7 would have missed them.
      jobVms: new Map([[7, [10, 11]]]),
      lastSuccess: new Map(),
    });
    expect(missed).toEqual([]);
  });
});
