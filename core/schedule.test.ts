import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.ts';
import { awsScheduleExpression, describeSchedule, nextRun, nextRuns, parseSchedule } from './schedule.ts';

const now = new Date('2026-11-26T19:30:00.000Z'); // a Thursday
const iso = (d: Date[]) => d.map((x) => x.toISOString());

function rejects(request: unknown, message: RegExp) {
  expect(() => parseSchedule(request, now)).toThrow(ValidationError);
  expect(() => parseSchedule(request, now)).toThrow(message);
}

describe('parseSchedule', () => {
  it('resolves now, +SECONDS and an ISO time to an absolute start', () => {
    expect(parseSchedule({ time: 'now' }, now).start).toBe(now.toISOString());
    expect(parseSchedule({ time: '+5' }, now).start).toBe('2026-11-26T19:30:05.000Z');
    expect(parseSchedule({ time: '2026-12-01T02:00:00+01:00' }, now).start).toBe('2026-12-01T01:00:00.000Z');
  });

  it('rejects unknown repeats, cron syntax errors, past times and schedules that never run', () => {
    rejects({ time: 'now', repeat: 'fortnightly' }, /repeat: must be hourly, daily, weekly, monthly or cron/);
    rejects({ time: 'now', repeat: 'cron(0 10 * * *)' }, /must have 6 fields/);
    rejects({ time: 'now', repeat: 'cron(0 10 * * MON *)' }, /exactly one of day-of-month and day-of-week/);
    rejects({ time: 'now', repeat: 'cron(61 10 * * ? *)' }, /61 is not between 0 and 59/);
    rejects({ time: '2026-11-26T19:00:00Z' }, /time: 2026-11-26T19:00:00Z is in the past/);
    rejects({ time: 'tomorrow' }, /time: must be now, \+SECONDS or an ISO-8601 time/);
    rejects({ time: '2026-12-01T02:00:00' }, /ISO-8601 time with a zone/);
    rejects({ time: 'now', repeat: 'cron(0 10 * * ? 2020)' }, /never runs/);
    rejects({ time: 'now', end: 3 }, /end: only a repeating schedule/);
    rejects({ time: 'now', repeat: 'daily', end: 0 }, /end: a number of runs must be 1 or more/);
    rejects({ time: '+100', repeat: 'daily', end: '2026-11-26T19:30:00Z' }, /end: .* is before the start/);
    rejects({ time: 'now', repeat: 'weekly', days: [7] }, /weekly days are 0-6/);
    rejects({ time: 'now', repeat: 'daily', days: [1] }, /only weekly and monthly/);
    rejects({ time: 'now', every: 3 }, /Unrecognized key/);
  });
});

describe('nextRun / nextRuns', () => {
  it('a one-shot schedule runs once at its start', () => {
    const spec = parseSchedule({ time: '+5' }, now);
    expect(iso(nextRuns(spec, 0, now, 3))).toEqual(['2026-11-26T19:30:05.000Z']);
    expect(nextRun(spec, 1, new Date('2026-11-26T19:30:05.000Z'))).toBeNull();
  });

  it('hourly and daily repeat from the start, and a count ends them', () => {
    const hourly = parseSchedule({ time: 'now', repeat: 'hourly', end: 2 }, now);
    expect(iso(nextRuns(hourly, 0, new Date(now.getTime() - 1), 5))).toEqual([
      '2026-11-26T19:30:00.000Z',
      '2026-11-26T20:30:00.000Z',
    ]);
    const daily = parseSchedule({ time: '2026-11-27T02:00:00Z', repeat: 'daily' }, now);
    expect(iso(nextRuns(daily, 0, now, 2))).toEqual(['2026-11-27T02:00:00.000Z', '2026-11-28T02:00:00.000Z']);
    // A late evaluation (after a missed run) goes to the next one, not back in time.
    expect(nextRun(daily, 1, new Date('2026-11-29T12:00:00Z'))?.toISOString()).toBe(
      '2026-11-30T02:00:00.000Z',
    );
  });

  it('weekly and monthly run on the chosen days at the start time of day, up to the end date', () => {
    const weekly = parseSchedule(
      { time: '2026-11-27T03:00:00Z', repeat: 'weekly', days: [1, 5], end: '2026-12-08T00:00:00Z' },
      now,
    );
    expect(iso(nextRuns(weekly, 0, now, 10))).toEqual([
      '2026-11-27T03:00:00.000Z', // Friday
      '2026-11-30T03:00:00.000Z', // Monday
      '2026-12-04T03:00:00.000Z',
      '2026-12-07T03:00:00.000Z',
    ]);
    const monthly = parseSchedule({ time: '2026-11-27T01:00:00Z', repeat: 'monthly', days: [1, 31] }, now);
    expect(iso(nextRuns(monthly, 0, now, 4))).toEqual([
      '2026-12-01T01:00:00.000Z',
      '2026-12-31T01:00:00.000Z',
      '2027-01-01T01:00:00.000Z',
      '2027-01-31T01:00:00.000Z',
    ]);
  });

  it('cron repeats follow AWS syntax (? , L #)', () => {
    const spec = parseSchedule({ time: 'now', repeat: 'cron(0 18 ? * 6L *)' }, now);
    // The last Friday of each month at 18:00 UTC.
    expect(iso(nextRuns(spec, 0, now, 2))).toEqual(['2026-11-27T18:00:00.000Z', '2026-12-25T18:00:00.000Z']);
    const every5 = parseSchedule({ time: 'now', repeat: 'cron(*/5 * * * ? *)', end: 2 }, now);
    expect(iso(nextRuns(every5, 0, new Date(now.getTime() - 1), 5))).toEqual([
      '2026-11-26T19:30:00.000Z',
      '2026-11-26T19:35:00.000Z',
    ]);
  });
});

describe('awsScheduleExpression / describeSchedule', () => {
  it('maps each repeat to the EventBridge Scheduler expression', () => {
    const at = (r: Record<string, unknown>) =>
      awsScheduleExpression(parseSchedule({ time: '2026-12-01T02:05:09Z', ...r }, now));
    expect(at({})).toBe('at(2026-12-01T02:05:09)');
    expect(at({ repeat: 'hourly' })).toBe('cron(5 * * * ? *)');
    expect(at({ repeat: 'daily' })).toBe('cron(5 2 * * ? *)');
    expect(at({ repeat: 'weekly', days: [0, 3] })).toBe('cron(5 2 ? * SUN,WED *)');
    expect(at({ repeat: 'monthly', days: [15] })).toBe('cron(5 2 15 * ? *)');
    expect(at({ repeat: 'cron(0 4 ? * MON-FRI *)' })).toBe('cron(0 4 ? * MON-FRI *)');
  });

  it('describes a schedule in one line', () => {
    const spec = parseSchedule({ time: '2026-12-01T02:00:00Z', repeat: 'weekly', days: [1], end: 3 }, now);
    expect(describeSchedule(spec)).toBe('weekly on MON at 02:00 UTC, 3 runs');
  });
});
