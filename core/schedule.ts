/**
 * Scheduled actions: the one evaluator of schedule expressions, shared by the API (validation,
 * the EventBridge Scheduler expression), the dispatcher (which fires due schedules) and the CLI
 * (next run times). A schedule starts at `now`, `+SECONDS` or an ISO-8601 time, may repeat
 * (hourly, daily, weekly or monthly on chosen days, or an AWS `cron(...)` expression, all in
 * UTC) and may end after a number of runs or at a date.
 */
import awsCron from 'aws-cron-parser';
import { z } from 'zod';
import { ValidationError } from './errors.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

/** A schedule as a client asks for it (API body, CLI flags). */
export const ScheduleRequest = z.strictObject({
  /** `now`, `+SECONDS` or an ISO-8601 time with its zone (`2026-12-01T02:00:00Z`). */
  time: z.string().min(1),
  /** `hourly`, `daily`, `weekly`, `monthly` or `cron(<AWS cron expression>)`; absent: once. */
  repeat: z.string().min(1).optional(),
  /** weekly: days of the week 0-6 (0 = Sunday); monthly: days of the month 1-31. */
  days: z.array(z.number().int()).min(1).optional(),
  /** A number of runs, or an ISO-8601 date after which it never runs. */
  end: z.union([z.number(), z.string().min(1)]).optional(),
});
export type ScheduleRequest = z.infer<typeof ScheduleRequest>;

export const Repeat = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('hourly') }),
  z.object({ kind: z.literal('daily') }),
  z.object({ kind: z.literal('weekly'), days: z.array(z.number().int().min(0).max(6)).min(1) }),
  z.object({ kind: z.literal('monthly'), days: z.array(z.number().int().min(1).max(31)).min(1) }),
  z.object({ kind: z.literal('cron'), expression: z.string().min(1) }),
]);
export type Repeat = z.infer<typeof Repeat>;

export const ScheduleEnd = z.union([
  z.object({ count: z.number().int().positive() }),
  z.object({ date: z.string() }),
]);
export type ScheduleEnd = z.infer<typeof ScheduleEnd>;

/** A validated schedule: absolute start, optional repeat and end. */
export const ScheduleSpec = z.object({
  start: z.string(),
  repeat: Repeat.optional(),
  end: ScheduleEnd.optional(),
});
export type ScheduleSpec = z.infer<typeof ScheduleSpec>;

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})$/;

function isoTime(text: string, field: string): Date {
  const ms = Date.parse(text);
  if (!ISO.test(text) || Number.isNaN(ms)) {
    throw new ValidationError(
      `${field}: must be now, +SECONDS or an ISO-8601 time with a zone (got "${text}")`,
    );
  }
  return new Date(ms);
}

/** The six fields of an AWS cron expression; ValidationError naming what is wrong. */
function parseCron(expression: string): ReturnType<typeof awsCron.parse> {
  const fields = expression.trim().split(/\s+/);
  const bad = (why: string) => new ValidationError(`repeat: cron(${expression}): ${why}`);
  if (fields.length !== 6) {
    throw bad('must have 6 fields: minutes hours day-of-month month day-of-week year');
  }
  if ((fields[2] === '?') === (fields[4] === '?')) {
    throw bad('exactly one of day-of-month and day-of-week must be ?');
  }
  if (fields.some((f) => !/^[0-9A-Za-z*?,/#L-]+$/.test(f))) throw bad('unexpected characters');
  try {
    const parsed = awsCron.parse(fields.join(' '));
    const lists = Object.values(parsed) as unknown[][];
    if (lists.some((l) => l.some((v) => typeof v === 'number' && Number.isNaN(v)))) throw bad('not a number');
    return parsed;
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw bad(err instanceof Error ? err.message : 'invalid');
  }
}

function parseRepeat(request: ScheduleRequest, start: Date): Repeat | undefined {
  const { repeat, days } = request;
  if (repeat === undefined) {
    if (days) throw new ValidationError('days: only weekly and monthly repeats take days');
    return undefined;
  }
  const cron = /^cron\((.+)\)$/.exec(repeat.trim());
  if (cron?.[1]) {
    if (days) throw new ValidationError('days: only weekly and monthly repeats take days');
    const expression = cron[1].trim();
    parseCron(expression);
    return { kind: 'cron', expression };
  }
  if (repeat === 'hourly' || repeat === 'daily') {
    if (days) throw new ValidationError('days: only weekly and monthly repeats take days');
    return { kind: repeat };
  }
  if (repeat === 'weekly') {
    const chosen = days ?? [start.getUTCDay()];
    if (chosen.some((d) => d < 0 || d > 6))
      throw new ValidationError('days: weekly days are 0-6 (0 = Sunday)');
    return { kind: 'weekly', days: [...new Set(chosen)].sort((a, b) => a - b) };
  }
  if (repeat === 'monthly') {
    const chosen = days ?? [start.getUTCDate()];
    if (chosen.some((d) => d < 1 || d > 31)) throw new ValidationError('days: monthly days are 1-31');
    return { kind: 'monthly', days: [...new Set(chosen)].sort((a, b) => a - b) };
  }
  throw new ValidationError(
    `repeat: must be hourly, daily, weekly, monthly or cron(<AWS cron expression>) (got "${repeat}")`,
  );
}

function parseEnd(
  request: ScheduleRequest,
  start: Date,
  repeat: Repeat | undefined,
): ScheduleEnd | undefined {
  const { end } = request;
  if (end === undefined) return undefined;
  if (!repeat) throw new ValidationError('end: only a repeating schedule has an end');
  if (typeof end === 'number' || /^\d+$/.test(end)) {
    const count = Number(end);
    if (!Number.isInteger(count) || count < 1)
      throw new ValidationError('end: a number of runs must be 1 or more');
    return { count };
  }
  const date = isoTime(end, 'end');
  if (date.getTime() < start.getTime()) throw new ValidationError(`end: ${end} is before the start`);
  return { date: date.toISOString() };
}

/**
 * Validate a client's schedule against `now`: ValidationError (naming the field) for an unknown
 * repeat, a cron syntax error, a time in the past, or a schedule that would never run.
 */
export function parseSchedule(request: unknown, now: Date): ScheduleSpec {
  const parsed = ScheduleRequest.safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(`${issue?.path.join('.') || 'schedule'}: ${issue?.message ?? 'invalid'}`);
  }
  const body = parsed.data;
  let start: Date;
  const relative = /^\+(\d{1,9})$/.exec(body.time);
  if (body.time === 'now') start = now;
  else if (relative) start = new Date(now.getTime() + Number(relative[1]) * 1000);
  else {
    start = isoTime(body.time, 'time');
    // A second of grace for clocks and round trips; anything older is a mistake.
    if (start.getTime() < now.getTime() - 1000) {
      throw new ValidationError(`time: ${body.time} is in the past`);
    }
  }
  const repeat = parseRepeat(body, start);
  const spec: ScheduleSpec = { start: start.toISOString(), repeat, end: parseEnd(body, start, repeat) };
  if (!nextRun(spec, 0, new Date(start.getTime() - 1))) {
    throw new ValidationError('repeat: the schedule never runs (no time matches before its end)');
  }
  return spec;
}

/** First time `t` with t >= from (inclusive) matching the repeat, not before the start. */
function occurrence(spec: ScheduleSpec, from: Date): Date | null {
  const start = new Date(spec.start);
  const lower = Math.max(from.getTime(), start.getTime());
  const repeat = spec.repeat;
  if (!repeat) return start.getTime() >= from.getTime() ? start : null;
  if (repeat.kind === 'hourly' || repeat.kind === 'daily') {
    const step = repeat.kind === 'hourly' ? HOUR : DAY;
    const k = Math.ceil((lower - start.getTime()) / step);
    return new Date(start.getTime() + k * step);
  }
  if (repeat.kind === 'cron') {
    const parsed = awsCron.parse(repeat.expression);
    // next() answers the first time strictly after its argument, minute-aligned.
    let cursor = new Date(lower - 60_000);
    for (let i = 0; i < 3; i++) {
      const next = awsCron.next(parsed, cursor);
      if (!next) return null;
      if (next.getTime() >= lower) return next;
      cursor = next;
    }
    return null;
  }
  // weekly / monthly: the start's time of day on the chosen days.
  const timeOfDay = start.getTime() % DAY;
  const firstDay = Math.floor(lower / DAY) * DAY;
  for (let d = 0; d < 800; d++) {
    const candidate = new Date(firstDay + d * DAY + timeOfDay);
    if (candidate.getTime() < lower) continue;
    const day = repeat.kind === 'weekly' ? candidate.getUTCDay() : candidate.getUTCDate();
    if (repeat.days.includes(day)) return candidate;
  }
  return null;
}

/**
 * The run after `after` (strictly later) of a schedule that already ran `runs` times, or null
 * when it is over (no repeat left, its count reached, or past its end date).
 */
export function nextRun(spec: ScheduleSpec, runs: number, after: Date): Date | null {
  if (spec.end && 'count' in spec.end && runs >= spec.end.count) return null;
  if (!spec.repeat && runs > 0) return null;
  const next = occurrence(spec, new Date(after.getTime() + 1));
  if (!next) return null;
  if (spec.end && 'date' in spec.end && next.getTime() > Date.parse(spec.end.date)) return null;
  return next;
}

/** Up to `count` run times from `after` on, for a schedule that already ran `runs` times. */
export function nextRuns(spec: ScheduleSpec, runs: number, after: Date, count: number): Date[] {
  const out: Date[] = [];
  let cursor = after;
  for (let i = 0; i < count; i++) {
    const next = nextRun(spec, runs + i, cursor);
    if (!next) break;
    out.push(next);
    cursor = next;
  }
  return out;
}

/** `2026-12-01T02:00:00` (UTC, no zone, seconds kept) for EventBridge's `at()`. */
function atTime(date: Date): string {
  return date.toISOString().slice(0, 19);
}

/**
 * The EventBridge Scheduler expression of a schedule (UTC): `at(...)` once, else `cron(...)`.
 * Scheduler has no run count: the dispatcher ends a counted schedule itself.
 */
export function awsScheduleExpression(spec: ScheduleSpec): string {
  const start = new Date(spec.start);
  const repeat = spec.repeat;
  if (!repeat) return `at(${atTime(start)})`;
  const m = start.getUTCMinutes();
  const h = start.getUTCHours();
  switch (repeat.kind) {
    case 'hourly':
      return `cron(${m} * * * ? *)`;
    case 'daily':
      return `cron(${m} ${h} * * ? *)`;
    case 'weekly':
      return `cron(${m} ${h} ? * ${repeat.days.map((d) => WEEKDAYS[d]).join(',')} *)`;
    case 'monthly':
      return `cron(${m} ${h} ${repeat.days.join(',')} * ? *)`;
    case 'cron':
      return `cron(${repeat.expression})`;
  }
}

/** A short human description (`daily at 02:00 UTC, 3 runs`), for lists. */
export function describeSchedule(spec: ScheduleSpec): string {
  const start = new Date(spec.start);
  const hhmm = start.toISOString().slice(11, 16);
  const repeat = spec.repeat;
  let text: string;
  if (!repeat) text = `once at ${spec.start}`;
  else if (repeat.kind === 'hourly') text = `hourly from ${spec.start}`;
  else if (repeat.kind === 'daily') text = `daily at ${hhmm} UTC`;
  else if (repeat.kind === 'weekly')
    text = `weekly on ${repeat.days.map((d) => WEEKDAYS[d]).join(',')} at ${hhmm} UTC`;
  else if (repeat.kind === 'monthly') text = `monthly on day ${repeat.days.join(',')} at ${hhmm} UTC`;
  else text = `cron(${repeat.expression})`;
  if (spec.end && 'count' in spec.end) text += `, ${spec.end.count} runs`;
  if (spec.end && 'date' in spec.end) text += `, until ${spec.end.date}`;
  return text;
}
