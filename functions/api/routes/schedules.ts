/**
 * Scheduled actions of VMs, backup jobs and datastores (`lifeboat vm sched ...`, `lifeboat
 * backupjob sched ...`, `lifeboat datastore sched ...`): list (with the next run times), add,
 * delete. The schedule is checked by `core/schedule.ts` and its action against its target by
 * `core/schedule-actions.ts` before anything is written, so a bad one changes nothing; in AWS it
 * is mirrored into EventBridge Scheduler.
 */
import { CreateScheduleBody, parseBody } from '#core/contracts/api.ts';
import { Conflict, NotFound, ValidationError } from '#core/errors.ts';
import { assertPriority } from '#core/jobs.ts';
import type { Datastore, Vm } from '#core/model.ts';
import { describeSchedule, nextRuns, parseSchedule } from '#core/schedule.ts';
import { scheduleActionOf, scheduleSample } from '#core/schedule-actions.ts';
import { createAwsSchedule, deleteAwsSchedule } from '../../operations/eventbridge.ts';
import { allocateId } from '../../repo/counters.ts';
import { datastores } from '../../repo/datastores.ts';
import { type JobRecord, jobOfVm, jobs } from '../../repo/jobs.ts';
import { ACTIVE, publicSchedule, type ScheduleRecord, schedules, schedulesOf } from '../../repo/schedules.ts';
import { vms } from '../../repo/vms.ts';
import { authorize } from '../access.ts';
import { items, json, pathId, type RouteContext, type RouteHandler } from '../http.ts';

type Target = ScheduleRecord['target'];

/** The VM, job or datastore of the path, checked for the right the route's row asks (core/rights.ts). */
async function targetOf(ctx: RouteContext, target: Target): Promise<Vm | JobRecord | Datastore> {
  const id = pathId(ctx);
  const object =
    target === 'vm' ? await vms.get(id) : target === 'job' ? await jobs.get(id) : await datastores.get(id);
  authorize(ctx, target, object);
  return object;
}

const NOUN: Record<Target, string> = { vm: 'VM', job: 'backup job', datastore: 'datastore' };

/** A schedule as listed: the record, a description and its next run times. */
function view(record: ScheduleRecord, now = new Date()) {
  const upcoming = record.nextRunAt
    ? [
        record.nextRunAt,
        ...nextRuns(record.spec, record.runs + 1, new Date(record.nextRunAt), 2).map((d) => d.toISOString()),
      ]
    : [];
  return {
    ...publicSchedule(record),
    description: describeSchedule(record.spec),
    nextRuns: upcoming,
    now: now.toISOString(),
  };
}

function list(target: Target): RouteHandler {
  return async (ctx) => {
    const object = await targetOf(ctx, target);
    return items((await schedulesOf(target, object.id)).map((s) => view(s)));
  };
}

function add(target: Target): RouteHandler {
  return async (ctx) => {
    const object = await targetOf(ctx, target);
    const body = parseBody(CreateScheduleBody, ctx.body);
    const now = new Date();
    const spec = parseSchedule({ time: body.time, repeat: body.repeat, days: body.days, end: body.end }, now);
    const action = scheduleActionOf(target, body);
    assertPriority(ctx.user.role, body.priority);
    let datastoreId: number | undefined;
    if (target === 'vm') {
      if (body.datastoreId === undefined) throw new ValidationError('datastoreId: required for a VM backup');
      const job = 'backups' in object ? await jobOfVm(object) : undefined;
      if (job)
        throw new Conflict(`VM ${object.id} belongs to backup job ${job.id}: schedule the job instead`);
      const datastore = await datastores.get(body.datastoreId);
      authorize(ctx, 'datastore', datastore);
      datastoreId = datastore.id;
    } else if (target === 'job' && body.datastoreId !== undefined) {
      throw new ValidationError('datastoreId: a backup job uses its own datastore');
    }
    const sample = scheduleSample(action, body.sample);
    const id = await allocateId('schedule');
    const first = new Date(spec.start);
    const record: ScheduleRecord = {
      id,
      target,
      targetId: object.id,
      action,
      datastoreId,
      reset: body.reset,
      priority: body.priority ?? 0,
      ...(sample !== undefined && { sample }),
      spec,
      nextRunAt: first.toISOString(),
      runs: 0,
      createdBy: ctx.user.name,
      createdAt: now.toISOString(),
      queue: ACTIVE,
    };
    record.awsName = await createAwsSchedule(id, spec);
    await schedules.put(record, { expression: 'attribute_not_exists(id)' });
    return json(view(await schedules.get(id), now), 201);
  };
}

function remove(target: Target): RouteHandler {
  return async (ctx) => {
    const object = await targetOf(ctx, target);
    const schedule = await schedules.find(pathId(ctx, 'schedId'));
    if (!schedule || schedule.target !== target || schedule.targetId !== object.id) {
      throw new NotFound(`Schedule ${ctx.params.schedId} does not exist on ${NOUN[target]} ${object.id}`);
    }
    await deleteAwsSchedule(schedule.awsName);
    await schedules.delete(schedule.id);
    return { statusCode: 204 };
  };
}

/** Schedule routes by route key. */
export const scheduleRoutes: Record<string, RouteHandler> = {
  'GET /vms/{id}/schedules': list('vm'),
  'POST /vms/{id}/schedules': add('vm'),
  'DELETE /vms/{id}/schedules/{schedId}': remove('vm'),
  'GET /jobs/{id}/schedules': list('job'),
  'POST /jobs/{id}/schedules': add('job'),
  'DELETE /jobs/{id}/schedules/{schedId}': remove('job'),
  'GET /datastores/{id}/schedules': list('datastore'),
  'POST /datastores/{id}/schedules': add('datastore'),
  'DELETE /datastores/{id}/schedules/{schedId}': remove('datastore'),
};
