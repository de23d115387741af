/**
 * The schedule builder's answers turned into the body of `POST /vms/{id}/schedules` (the
 * CreateScheduleBody of the OpenAPI document): start now, after a time (`+SECONDS`) or at a UTC
 * date and time; repeat hourly, daily, weekly or monthly on chosen days, or by an AWS cron
 * expression; end after a number of runs or at a date. core/schedule.ts checks it again.
 */
import type { Operations } from './api.ts';

type ScheduleBody = Operations['POST /vms/{id}/schedules']['body'];

/** A duration unit of "+time", in seconds. */
export const UNITS = { minutes: 60, hours: 3600, days: 86_400 } as const;

/** The builder's answers. */
export interface ScheduleChoices {
  datastoreId?: number;
  reset: boolean;
  when: 'now' | 'after' | 'at';
  /** "after": how many units. */
  after: string;
  unit: keyof typeof UNITS;
  /** "at": `YYYY-MM-DD` and `HH:MM` in UTC. */
  date: string;
  time: string;
  repeat: 'once' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'cron';
  /** weekly: 0-6 (Sunday 0); monthly: 1-31. */
  days: number[];
  /** The six fields of an AWS cron expression. */
  cron: string;
  end: 'never' | 'count' | 'date';
  count: string;
  endDate: string;
}

/** The body of `choices`, or the first thing wrong with them (field and message). */
export function scheduleBody(
  c: ScheduleChoices,
): { body: ScheduleBody } | { field: string; message: string } {
  if (c.datastoreId === undefined)
    return { field: 'datastore', message: 'Choose the datastore to back up to' };
  let time: string;
  if (c.when === 'now') time = 'now';
  else if (c.when === 'after') {
    if (!/^\d{1,6}$/.test(c.after.trim()) || Number(c.after) === 0) {
      return { field: 'after', message: 'A whole number greater than 0' };
    }
    time = `+${Number(c.after) * UNITS[c.unit]}`;
  } else {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(c.date) || !/^\d{2}:\d{2}$/.test(c.time)) {
      return { field: 'at', message: 'A date and a time (UTC)' };
    }
    time = `${c.date}T${c.time}:00Z`;
  }
  const body: ScheduleBody = { datastoreId: c.datastoreId, time, ...(c.reset ? { reset: true } : {}) };
  if (c.repeat === 'cron') {
    if (c.cron.trim().split(/\s+/).length !== 6) {
      return { field: 'cron', message: 'Six fields: minutes hours day-of-month month day-of-week year' };
    }
    body.repeat = `cron(${c.cron.trim()})`;
  } else if (c.repeat !== 'once') {
    body.repeat = c.repeat;
    if (c.repeat === 'weekly' || c.repeat === 'monthly') {
      if (c.days.length === 0) return { field: 'days', message: 'Choose at least one day' };
      body.days = [...c.days].sort((a, b) => a - b);
    }
  }
  if (c.end === 'count') {
    if (!/^\d{1,6}$/.test(c.count.trim()) || Number(c.count) === 0) {
      return { field: 'count', message: 'A number of runs greater than 0' };
    }
    body.end = Number(c.count);
  } else if (c.end === 'date') {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(c.endDate)) return { field: 'endDate', message: 'A date' };
    body.end = `${c.endDate}T23:59:59Z`;
  }
  return { body };
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** A stored schedule's repeat and end in words (`weekly on Mon, Thu; 3 runs`). */
export function describeSpec(spec: {
  repeat?: { kind: string; days?: number[]; expression?: string };
  end?: { count: number } | { date: string };
}): string {
  const r = spec.repeat;
  let text = 'once';
  if (r?.kind === 'cron') text = `cron(${r.expression})`;
  else if (r?.kind === 'weekly') text = `weekly on ${(r.days ?? []).map((d) => WEEKDAYS[d]).join(', ')}`;
  else if (r?.kind === 'monthly') text = `monthly on day ${(r.days ?? []).join(', ')}`;
  else if (r) text = r.kind;
  if (spec.end && 'count' in spec.end) text += `; ends after ${spec.end.count} runs`;
  else if (spec.end) text += `; ends ${spec.end.date}`;
  return text;
}

export { WEEKDAYS };
