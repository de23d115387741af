/**
 * EventBridge Scheduler's schedule expressions, as local mode fires them: `at(yyyy-mm-ddThh:mm:ss)`
 * once, `rate(N unit)` from the start date (or the creation time), `cron(6 AWS fields)`, each in
 * the schedule's IANA time zone (UTC by default) and between its start and end dates.
 */
import awsCron from 'aws-cron-parser';

/** A parsed expression. `at` holds the wall-clock time (in the schedule's zone) as UTC fields. */
export type Expression =
  | { kind: 'at'; wall: number }
  | { kind: 'rate'; ms: number }
  | { kind: 'cron'; cron: ReturnType<typeof awsCron.parse> };

/** An expression, time zone or date EventBridge would refuse (answered as ValidationException). */
export class ExpressionError extends Error {
  override readonly name = 'ExpressionError';
}

const MINUTE = 60_000;
const UNITS: Record<string, number> = {
  minute: MINUTE,
  minutes: MINUTE,
  hour: 60 * MINUTE,
  hours: 60 * MINUTE,
  day: 24 * 60 * MINUTE,
  days: 24 * 60 * MINUTE,
};
/**
 * Local mode's one extension: `rate(N seconds)`, which AWS refuses (its least rate is a minute).
 * Only the control plane's own dispatcher tick uses it, when `schedulerIntervalSeconds` is under
 * a minute (tests), so that it can still be a schedule.
 */
const LOCAL_UNITS: Record<string, number> = { second: 1000, seconds: 1000 };

/** Parse `text`; `allowSeconds` admits the local `rate(N seconds)`. */
export function parseExpression(text: string, allowSeconds = false): Expression {
  const at = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/.exec(text);
  if (at) {
    const [y, mo, d, h, mi, s] = at.slice(1).map(Number) as [number, number, number, number, number, number];
    const wall = Date.UTC(y, mo - 1, d, h, mi, s);
    const back = new Date(wall);
    if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
      throw new ExpressionError(`Invalid Schedule Expression ${text}.`);
    }
    return { kind: 'at', wall };
  }
  const rate = /^rate\((\d+) ([a-z]+)\)$/.exec(text);
  if (rate) {
    const value = Number(rate[1]);
    const unit = rate[2] ?? '';
    const ms = UNITS[unit] ?? (allowSeconds ? LOCAL_UNITS[unit] : undefined);
    // AWS: a value of 1 takes the singular unit, any other the plural.
    if (!ms || value < 1 || (value === 1) !== !unit.endsWith('s')) {
      throw new ExpressionError(`Invalid Schedule Expression ${text}.`);
    }
    return { kind: 'rate', ms: value * ms };
  }
  const cron = /^cron\((.+)\)$/.exec(text);
  if (cron?.[1]) {
    const fields = cron[1].trim().split(/\s+/);
    const ok =
      fields.length === 6 &&
      (fields[2] === '?') !== (fields[4] === '?') &&
      fields.every((f) => /^[0-9A-Za-z*?,/#L-]+$/.test(f));
    if (ok) {
      try {
        const parsed = awsCron.parse(fields.join(' '));
        const lists = Object.values(parsed) as unknown[][];
        if (!lists.some((l) => l.some((v) => typeof v === 'number' && Number.isNaN(v)))) {
          return { kind: 'cron', cron: parsed };
        }
      } catch {
        // refused below
      }
    }
  }
  throw new ExpressionError(`Invalid Schedule Expression ${text}.`);
}

/** Throws ExpressionError unless `zone` is an IANA time zone this Node knows. */
export function checkTimeZone(zone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new ExpressionError(`Invalid time zone: ${zone}`);
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall clock of instant `ms` in `zone`, as UTC fields. */
export function toWall(ms: number, zone: string): number {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
  const wall = Date.UTC(
    p.year ?? 0,
    (p.month ?? 1) - 1,
    p.day ?? 1,
    p.hour ?? 0,
    p.minute ?? 0,
    p.second ?? 0,
  );
  return wall + (((ms % 1000) + 1000) % 1000);
}

/**
 * The instant whose wall clock in `zone` is `wall`. A wall time skipped by a DST change maps to
 * the instant an hour on; a repeated one to its first occurrence.
 */
export function fromWall(wall: number, zone: string): number {
  const first = wall - (toWall(wall, zone) - wall);
  const offset = toWall(first, zone) - first;
  const candidate = wall - offset;
  const earlier = candidate - 3_600_000;
  return toWall(earlier, zone) === wall ? earlier : candidate;
}

/** What the firing times of a schedule depend on. */
export interface Timing {
  expression: Expression;
  zone: string;
  /** Epoch ms; none before. */
  startDate?: number;
  /** Epoch ms; none after. */
  endDate?: number;
  /** Epoch ms: a rate without a start date counts from here. */
  createdAt: number;
}

/**
 * The first firing time strictly after `after` (epoch ms), or undefined when there is none: an
 * `at()` fires at its time (once: the caller stops asking after it fired), a rate at
 * start + k × interval (k ≥ 0 from a start date, k ≥ 1 from the creation time), a cron at each
 * matching minute of the zone's wall clock.
 */
export function nextFiring(t: Timing, after: number): number | undefined {
  const lower = Math.max(after + 1, t.startDate ?? Number.NEGATIVE_INFINITY);
  let next: number | undefined;
  switch (t.expression.kind) {
    case 'at': {
      const at = fromWall(t.expression.wall, t.zone);
      next = at >= lower ? at : undefined;
      break;
    }
    case 'rate': {
      const anchor = t.startDate ?? t.createdAt + t.expression.ms;
      const k = Math.max(0, Math.ceil((lower - anchor) / t.expression.ms));
      next = anchor + k * t.expression.ms;
      break;
    }
    case 'cron': {
      // next() answers the first minute strictly after its argument, on the wall clock.
      let cursor = toWall(lower - 1, t.zone);
      for (let i = 0; i < 4 && next === undefined; i++) {
        const wall = awsCron.next(t.expression.cron, new Date(cursor));
        if (!wall) break;
        const instant = fromWall(wall.getTime(), t.zone);
        if (instant >= lower) next = instant;
        cursor = wall.getTime();
      }
      break;
    }
  }
  if (next === undefined || (t.endDate !== undefined && next > t.endDate)) return undefined;
  return next;
}
