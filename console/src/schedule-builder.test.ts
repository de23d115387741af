import { describe, expect, it } from 'vitest';
import { describeSpec, type ScheduleChoices, scheduleBody } from './schedule-builder.ts';

const base: ScheduleChoices = {
  datastoreId: 100,
  reset: false,
  when: 'now',
  after: '',
  unit: 'hours',
  date: '',
  time: '',
  repeat: 'once',
  days: [],
  cron: '',
  end: 'never',
  count: '',
  endDate: '',
};

describe('schedule builder', () => {
  it('builds now, +time and at', () => {
    expect(scheduleBody(base)).toEqual({ body: { datastoreId: 100, time: 'now' } });
    expect(scheduleBody({ ...base, when: 'after', after: '2', unit: 'hours' })).toEqual({
      body: { datastoreId: 100, time: '+7200' },
    });
    expect(scheduleBody({ ...base, when: 'at', date: '2030-01-02', time: '03:04' })).toEqual({
      body: { datastoreId: 100, time: '2030-01-02T03:04:00Z' },
    });
  });

  it('builds repeats and ends', () => {
    expect(scheduleBody({ ...base, repeat: 'weekly', days: [4, 1], end: 'count', count: '3' })).toEqual({
      body: { datastoreId: 100, time: 'now', repeat: 'weekly', days: [1, 4], end: 3 },
    });
    expect(
      scheduleBody({ ...base, repeat: 'cron', cron: '0 2 * * ? *', end: 'date', endDate: '2031-05-06' }),
    ).toEqual({
      body: { datastoreId: 100, time: 'now', repeat: 'cron(0 2 * * ? *)', end: '2031-05-06T23:59:59Z' },
    });
  });

  it('names the field that is wrong', () => {
    expect(scheduleBody({ ...base, datastoreId: undefined })).toMatchObject({ field: 'datastore' });
    expect(scheduleBody({ ...base, when: 'after', after: '0' })).toMatchObject({ field: 'after' });
    expect(scheduleBody({ ...base, repeat: 'monthly' })).toMatchObject({ field: 'days' });
    expect(scheduleBody({ ...base, repeat: 'cron', cron: '0 2 * *' })).toMatchObject({ field: 'cron' });
  });

  it('describes a stored schedule', () => {
    expect(describeSpec({ repeat: { kind: 'weekly', days: [1, 4] }, end: { count: 3 } })).toBe(
      'weekly on Mon, Thu; ends after 3 runs',
    );
    expect(describeSpec({})).toBe('once');
  });
});
