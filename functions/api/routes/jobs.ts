/**
 * Backup job routes (`lifeboat backupjob ...`): create, list, show, update, delete, run (backup)
 * and retry. A VM belongs to at most one job; the job's BACKUP_CONFIG defaults are checked with
 * `core/backup-config.ts` (plus RESET=YES|NO, the job's own "start a new chain").
 */
import { update as updateConfig } from '#core/backup-config.ts';
import { CreateJobBody, parseBody, UpdateJobBody } from '#core/contracts/api.ts';
import { Conflict, ValidationError } from '#core/errors.ts';
import { assertPriority, checkVmList, retryRun, startRun } from '#core/jobs.ts';
import type { BackupConfigRecord } from '#core/model.ts';
import { deleteAwsSchedule } from '../../operations/eventbridge.ts';
import { advanceJob } from '../../operations/job-progress.ts';
import { allocateId } from '../../repo/counters.ts';
import { datastores } from '../../repo/datastores.ts';
import { claimVms, type JobRecord, jobs, publicJob, releaseVms, updateJob } from '../../repo/jobs.ts';
import { schedules, schedulesOf } from '../../repo/schedules.ts';
import { vms } from '../../repo/vms.ts';
import { authorize, canUse, ownedBy } from '../access.ts';
import { items, json, pathId, type RouteContext, type RouteHandler } from '../http.ts';

/** The job's config pairs merged into `current`, checked; RESET must be YES or NO. */
function jobConfig(current: BackupConfigRecord, pairs: Record<string, string>): BackupConfigRecord {
  const { RESET, ...rest } = Object.fromEntries(Object.entries(pairs).map(([k, v]) => [k.toUpperCase(), v]));
  const next = updateConfig(current, rest, { canIncrement: true, append: false });
  if (RESET !== undefined) {
    const value = RESET.trim().toUpperCase();
    if (value === '') delete next.RESET;
    else if (value === 'YES' || value === 'NO') next.RESET = value;
    else throw new ValidationError('config.RESET: must be YES or NO');
  }
  return next;
}

/** The VMs exist and the user manages them; `claimVms` then takes them from no other job. */
async function checkVms(ctx: RouteContext, vmIds: number[]): Promise<void> {
  checkVmList(vmIds);
  for (const vmId of vmIds) {
    const vm = await vms.get(vmId);
    authorize(ctx, 'vm', vm);
  }
}

/** The job of the path, checked for the right the route's row asks (core/rights.ts). */
async function jobFor(ctx: RouteContext): Promise<JobRecord> {
  const job = await jobs.get(pathId(ctx));
  authorize(ctx, 'job', job);
  return job;
}

const list: RouteHandler = async (ctx) =>
  items(
    (await jobs.list())
      .filter((j) => canUse(ctx.user, j))
      .sort((a, b) => a.id - b.id)
      .map(publicJob),
  );

const show: RouteHandler = async (ctx) => json(publicJob(await jobFor(ctx)));

const create: RouteHandler = async (ctx) => {
  const body = parseBody(CreateJobBody, ctx.body);
  assertPriority(ctx.user.role, body.priority);
  const config = jobConfig({}, body.config);
  const datastore = await datastores.get(body.datastoreId);
  authorize(ctx, 'datastore', datastore);
  await checkVms(ctx, body.vmIds);
  const id = await allocateId('job');
  await claimVms(id, body.vmIds);
  const job = await jobs
    .put(
      {
        ...ownedBy(ctx.user),
        id,
        name: body.name,
        vmIds: body.vmIds,
        datastoreId: datastore.id,
        config,
        priority: body.priority,
        execution: body.execution,
        createdAt: new Date().toISOString(),
        version: 0,
      },
      { expression: 'attribute_not_exists(id)' },
    )
    .catch(async (err: unknown) => {
      await releaseVms(id, body.vmIds);
      throw err;
    });
  return json(publicJob(job), 201);
};

const patch: RouteHandler = async (ctx) => {
  const job = await jobFor(ctx);
  const body = parseBody(UpdateJobBody, ctx.body);
  assertPriority(ctx.user.role, body.priority);
  const config = body.config ? jobConfig(job.config, body.config) : undefined;
  if (body.datastoreId !== undefined) {
    authorize(ctx, 'datastore', await datastores.get(body.datastoreId));
  }
  if (body.vmIds) {
    await checkVms(ctx, body.vmIds);
    await claimVms(job.id, body.vmIds);
  }
  const { job: updated } = await updateJob(job.id, (current) => {
    if (body.vmIds && (current.backingUpVms.length || current.outdatedVms.length)) {
      throw new Conflict(`Backup job ${job.id} is running: change its VMs when it ends`);
    }
    const set: Partial<JobRecord> = { ...body, config };
    if (body.vmIds) {
      // Lists keep only the job's VMs.
      const keep = (l: number[]) => l.filter((id) => body.vmIds?.includes(id));
      Object.assign(set, { updatedVms: keep(current.updatedVms), errorVms: keep(current.errorVms) });
    }
    return { set, extra: undefined };
  }).catch(async (err: unknown) => {
    // Not changed: the VMs newly claimed go back.
    if (body.vmIds)
      await releaseVms(
        job.id,
        body.vmIds.filter((v) => !job.vmIds.includes(v)),
      );
    throw err;
  });
  // VMs taken out of the job are free again.
  if (body.vmIds)
    await releaseVms(
      job.id,
      job.vmIds.filter((v) => !updated.vmIds.includes(v)),
    );
  return json(publicJob(updated));
};

const remove: RouteHandler = async (ctx) => {
  const job = await jobFor(ctx);
  if (job.backingUpVms.length) {
    throw new Conflict(`Backup job ${job.id} is backing up VMs ${job.backingUpVms.join(', ')}`);
  }
  for (const schedule of await schedulesOf('job', job.id)) {
    await deleteAwsSchedule(schedule.awsName);
    await schedules.delete(schedule.id);
  }
  await jobs.delete(job.id);
  await releaseVms(job.id, job.vmIds);
  return { statusCode: 204 };
};

const backup: RouteHandler = async (ctx) => {
  const job = await jobFor(ctx);
  const progress = await advanceJob(job.id, (current) => startRun(current, new Date()));
  return json({ job: publicJob(progress.job), executions: progress.queued }, 202);
};

const retry: RouteHandler = async (ctx) => {
  const job = await jobFor(ctx);
  const progress = await advanceJob(job.id, (current) => retryRun(current, new Date()));
  return json({ job: publicJob(progress.job), executions: progress.queued }, 202);
};

/** Backup job routes by route key. */
export const jobRoutes: Record<string, RouteHandler> = {
  'GET /jobs': list,
  'POST /jobs': create,
  'GET /jobs/{id}': show,
  'PATCH /jobs/{id}': patch,
  'DELETE /jobs/{id}': remove,
  'POST /jobs/{id}/backup': backup,
  'POST /jobs/{id}/retry': retry,
};
