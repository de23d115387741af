/**
 * Which actions each kind of schedule takes: a VM's backs up; a backup job's backs up or drills
 * (restores a sample of its images); a datastore's verifies its images (all, or a sample) or
 * drills. A new action is one more entry here and one more case where the dispatcher fires it
 * (functions/dispatcher/schedules.ts).
 */
import { ValidationError } from './errors.ts';
import { MAX_DRILL_SAMPLE, type ScheduleActionKind, type ScheduleTarget } from './model.ts';

/** The images a scheduled drill restores each run when its schedule does not say. */
export const DEFAULT_DRILL_SAMPLE = 1;

/** The actions of each target, its default first. */
export const SCHEDULE_ACTIONS: Readonly<
  Record<ScheduleTarget, readonly [ScheduleActionKind, ...ScheduleActionKind[]]>
> = {
  vm: ['backup'],
  job: ['backup', 'drill'],
  datastore: ['verify', 'drill'],
};

const NOUN: Record<ScheduleTarget, string> = { vm: 'a VM', job: 'a backup job', datastore: 'a datastore' };

/** What a client asked of a new schedule, beyond its times. */
export interface ScheduleFields {
  action?: string;
  datastoreId?: number;
  reset?: boolean;
  sample?: number;
}

/**
 * The action of a new schedule of `target`: the one asked for, or the target's default.
 * ValidationError (naming the field) for an action the target does not take, a field that
 * only a backup takes on a schedule that does not back up, or a sample on a backup (or over a
 * drill's limit).
 */
export function scheduleActionOf(target: ScheduleTarget, fields: ScheduleFields): ScheduleActionKind {
  const allowed = SCHEDULE_ACTIONS[target];
  const action = fields.action ?? allowed[0];
  const found = allowed.find((a) => a === action);
  if (!found) {
    throw new ValidationError(
      `action: ${NOUN[target]}'s schedule can ${allowed.join(' or ')} (got "${action.slice(0, 40)}")`,
    );
  }
  if (target === 'datastore' && fields.datastoreId !== undefined) {
    throw new ValidationError("datastoreId: a datastore's schedule acts on its own datastore");
  }
  if (found !== 'backup' && fields.reset === true) {
    throw new ValidationError(`reset: only a backup starts a new chain (the action is ${found})`);
  }
  if (fields.sample !== undefined) {
    if (found === 'backup') {
      throw new ValidationError(
        `sample: only a verify or a drill takes a sample of images (the action is ${found})`,
      );
    }
    if (found === 'drill' && fields.sample > MAX_DRILL_SAMPLE) {
      throw new ValidationError(
        `sample: a drill restores at most ${MAX_DRILL_SAMPLE} images a run (got ${fields.sample})`,
      );
    }
  }
  return found;
}

/**
 * The sample a new schedule of `action` keeps: a drill's (asked, else {@link DEFAULT_DRILL_SAMPLE}),
 * a verify's when asked (none: every image each run); a backup's is refused by
 * {@link scheduleActionOf} first.
 */
export function scheduleSample(action: ScheduleActionKind, asked: number | undefined): number | undefined {
  return action === 'drill' ? (asked ?? DEFAULT_DRILL_SAMPLE) : asked;
}
