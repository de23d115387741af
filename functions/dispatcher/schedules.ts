/**
 * Firing scheduled actions: every dispatcher run queues the actions whose next run is due
 * (the action's EventBridge schedule, in AWS as in local mode, only makes sure a run happens
 * on time). Each firing first moves the schedule on with a write conditional on the `nextRunAt` it
 * read, so two dispatchers never fire the same run twice; runs missed while nothing ran collapse
 * into one, as a late cron would.
 */
import { startRun } from '#core/jobs.ts';
import { nextRun } from '#core/schedule.ts';
import { DEFAULT_DRILL_SAMPLE } from '#core/schedule-actions.ts';
import { log } from '#platform/log.ts';
import { queueVmBackup } from '../operations/backup-queue.ts';
import { enqueueScheduledDrills } from '../operations/drill.ts';
import { deleteAwsSchedule } from '../operations/eventbridge.ts';
import { advanceJob } from '../operations/job-progress.ts';
import { enqueueDatastoreVerifies } from '../operations/verify.ts';
import { datastores } from '../repo/datastores.ts';
import { jobs } from '../repo/jobs.ts';
import { dueSchedules, type ScheduleRecord, schedules } from '../repo/schedules.ts';
import { isConditionFailed } from '../repo/table.ts';
import { vms } from '../repo/vms.ts';

/** Claim the due run: true when this caller fired it. */
async function claim(schedule: ScheduleRecord, now: Date): Promise<ScheduleRecord | undefined> {
  const runs = schedule.runs + 1;
  const next = nextRun(schedule.spec, runs, now);
  try {
    return await schedules.update(
      schedule.id,
      { runs, lastRunAt: now.toISOString(), nextRunAt: next?.toISOString() },
      {
        remove: next ? [] : ['queue', 'nextRunAt'],
        condition: {
          expression: '#n = :n',
          names: { '#n': 'nextRunAt' },
          values: { ':n': schedule.nextRunAt },
        },
      },
    );
  } catch (err) {
    if (isConditionFailed(err)) return undefined;
    throw err;
  }
}

/** Queue the action of one claimed run; answers the (first) execution id. */
async function act(schedule: ScheduleRecord): Promise<string | undefined> {
  const user = { name: schedule.createdBy };
  if (schedule.action === 'drill') {
    const jobId = schedule.target === 'job' ? schedule.targetId : undefined;
    const datastoreId = jobId === undefined ? schedule.targetId : (await jobs.get(jobId)).datastoreId;
    const queued = await enqueueScheduledDrills(user, await datastores.get(datastoreId), {
      jobId,
      sample: schedule.sample ?? DEFAULT_DRILL_SAMPLE,
      priority: schedule.priority,
    });
    return queued[0]?.id;
  }
  if (schedule.target === 'datastore') {
    const datastore = await datastores.get(schedule.targetId);
    const queued = await enqueueDatastoreVerifies(user, datastore, {
      priority: schedule.priority,
      wake: false,
      ...(schedule.sample !== undefined && { sample: schedule.sample }),
    });
    return queued[0]?.id;
  }
  if (schedule.target === 'vm') {
    const vm = await vms.get(schedule.targetId);
    const execution = await queueVmBackup(user, vm, {
      datastoreId: schedule.datastoreId ?? 0,
      reset: schedule.reset,
      priority: schedule.priority,
      scheduleId: schedule.id,
      wake: false,
    });
    return execution.id;
  }
  const progress = await advanceJob(schedule.targetId, (job) => startRun(job, new Date()), {
    scheduleId: schedule.id,
  });
  return progress.queued[0]?.id;
}

/** Fire every due schedule; answers the ids of the schedules fired. */
export async function fireDueSchedules(now = new Date()): Promise<number[]> {
  const fired: number[] = [];
  for (const due of await dueSchedules(now)) {
    const claimed = await claim(due, now);
    if (!claimed) continue;
    fired.push(due.id);
    let lastExecutionId: string | undefined;
    let lastError: string | undefined;
    try {
      lastExecutionId = await act(claimed);
    } catch (err) {
      // The run is spent either way (a VM gone or busy): the next one tries again.
      lastError = err instanceof Error ? err.message : String(err);
      log('warn', 'scheduled action not queued', { scheduleId: due.id, error: lastError });
    }
    await schedules
      .update(
        due.id,
        { lastExecutionId, lastError },
        { remove: lastError ? ['lastExecutionId'] : ['lastError'] },
      )
      .catch(() => undefined);
    if (!claimed.nextRunAt) await deleteAwsSchedule(claimed.awsName).catch(() => undefined);
  }
  return fired;
}
