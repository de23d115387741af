/**
 * The schedules of local mode's EventBridge Scheduler: kept in a JSON file under the home, and
 * fired by one timer set to the earliest due one. Firing invokes the target Lambda
 * asynchronously with the target's `Input`, as Scheduler does; a schedule with no firing left
 * and `ActionAfterCompletion: DELETE` removes itself.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { checkTimeZone, ExpressionError, nextFiring, parseExpression, type Timing } from './expression.ts';

/** A stored schedule: the fields of CreateSchedule, dates as epoch ms. */
export const StoredSchedule = z.object({
  Name: z.string(),
  GroupName: z.string(),
  ScheduleExpression: z.string(),
  ScheduleExpressionTimezone: z.string().default('UTC'),
  StartDate: z.number().optional(),
  EndDate: z.number().optional(),
  Description: z.string().optional(),
  State: z.enum(['ENABLED', 'DISABLED']).default('ENABLED'),
  ActionAfterCompletion: z.enum(['NONE', 'DELETE']).default('NONE'),
  FlexibleTimeWindow: z.object({
    Mode: z.enum(['OFF', 'FLEXIBLE']),
    MaximumWindowInMinutes: z.number().optional(),
  }),
  Target: z.looseObject({ Arn: z.string().min(1), RoleArn: z.string().min(1), Input: z.string().optional() }),
  CreationDate: z.number(),
  LastModificationDate: z.number(),
  /** When it last fired (epoch ms): a restart does not fire it again for the same time. */
  lastFiredAt: z.number().optional(),
  /** Local mode's own tick may use `rate(N seconds)` (expression.ts). */
  localSeconds: z.boolean().optional(),
});
export type StoredSchedule = z.infer<typeof StoredSchedule>;

/** Invoke the target function (by name or ARN) asynchronously with `event`. */
export type TargetInvoker = (arn: string, event: unknown, roleArn: string) => void;

const key = (group: string, name: string) => `${group}/${name}`;

/** The timing of a stored schedule; throws ExpressionError when it is not a valid one. */
export function timingOf(s: StoredSchedule): Timing {
  checkTimeZone(s.ScheduleExpressionTimezone);
  return {
    expression: parseExpression(s.ScheduleExpression, s.localSeconds === true),
    zone: s.ScheduleExpressionTimezone,
    startDate: s.StartDate,
    endDate: s.EndDate,
    createdAt: s.CreationDate,
  };
}

/** The schedules, their file and their timer. */
export class ScheduleStore {
  private readonly schedules = new Map<string, StoredSchedule>();
  /** Per schedule, the time it was loaded or put: repeats count from there (none caught up). */
  private readonly since = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly invoke: TargetInvoker,
    private readonly log: (entry: Record<string, unknown>) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Read the file (absent: none) and arm the timer. */
  async load(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    let raw: unknown = [];
    try {
      raw = JSON.parse(await readFile(this.file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const s of z.array(StoredSchedule).parse(raw)) {
      this.schedules.set(key(s.GroupName, s.Name), s);
      this.since.set(key(s.GroupName, s.Name), this.now() - 1);
    }
    this.arm();
  }

  get(group: string, name: string): StoredSchedule | undefined {
    return this.schedules.get(key(group, name));
  }

  list(): StoredSchedule[] {
    return [...this.schedules.values()];
  }

  /** Add or replace a schedule (already validated with {@link timingOf}). */
  async put(s: StoredSchedule): Promise<void> {
    this.schedules.set(key(s.GroupName, s.Name), s);
    this.since.set(key(s.GroupName, s.Name), this.now() - 1);
    this.arm();
    await this.save();
  }

  /** Remove a schedule; false when there was none. */
  async delete(group: string, name: string): Promise<boolean> {
    const had = this.schedules.delete(key(group, name));
    this.since.delete(key(group, name));
    if (had) {
      this.arm();
      await this.save();
    }
    return had;
  }

  /** Stop firing (the file is left as it is). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.saving;
  }

  /**
   * When `s` fires next, or undefined when it never will again. An `at()` missed while local
   * mode was down fires once on the next start; missed repeats are not caught up.
   */
  nextOf(s: StoredSchedule): number | undefined {
    if (s.State !== 'ENABLED') return undefined;
    let timing: Timing;
    try {
      timing = timingOf(s);
    } catch (err) {
      if (err instanceof ExpressionError) return undefined;
      throw err;
    }
    if (timing.expression.kind === 'at') {
      return s.lastFiredAt === undefined ? nextFiring(timing, Number.NEGATIVE_INFINITY) : undefined;
    }
    const since = this.since.get(key(s.GroupName, s.Name)) ?? Number.NEGATIVE_INFINITY;
    return nextFiring(timing, Math.max(since, s.lastFiredAt ?? Number.NEGATIVE_INFINITY));
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    const now = this.now();
    let earliest = Number.POSITIVE_INFINITY;
    for (const s of this.schedules.values()) earliest = Math.min(earliest, this.nextOf(s) ?? earliest);
    if (earliest === Number.POSITIVE_INFINITY) return;
    // setTimeout takes at most 2^31-1 ms; a later time is re-armed on the way.
    const delay = Math.min(Math.max(0, earliest - now), 2 ** 31 - 1);
    this.timer = setTimeout(() => void this.fireDue(), delay);
    this.timer.unref();
  }

  /** Fire every schedule due now, then re-arm. */
  async fireDue(): Promise<void> {
    const now = this.now();
    let changed = false;
    for (const s of [...this.schedules.values()]) {
      const due = this.nextOf(s);
      if (due === undefined || due > now) continue;
      s.lastFiredAt = now;
      changed = true;
      this.fire(s);
      if (s.ActionAfterCompletion === 'DELETE' && this.nextOf(s) === undefined) {
        this.schedules.delete(key(s.GroupName, s.Name));
        this.since.delete(key(s.GroupName, s.Name));
        this.log({ level: 'debug', msg: 'schedule completed and deleted', schedule: s.Name });
      }
    }
    this.arm();
    if (changed) await this.save();
  }

  private fire(s: StoredSchedule): void {
    let event: unknown = {};
    if (s.Target.Input !== undefined) {
      try {
        event = JSON.parse(s.Target.Input);
      } catch {
        event = s.Target.Input;
      }
    }
    try {
      this.invoke(s.Target.Arn, event, s.Target.RoleArn);
    } catch (err) {
      this.log({ level: 'error', msg: 'schedule target not invoked', schedule: s.Name, error: String(err) });
    }
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify(this.list(), null, 2)}\n`;
    this.saving = this.saving.then(async () => {
      const tmp = `${this.file}.tmp`;
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, this.file);
    });
    return this.saving;
  }
}
