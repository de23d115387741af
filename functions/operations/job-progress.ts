/**
 * Moving backup jobs on: a run or a retry queues its first VMs, and each ended backup of a job
 * (Release, or the sweep for an execution that died) records the VM as UPDATED or ERROR and,
 * for a SEQUENTIAL job, queues the next VM. A VM that cannot be queued (gone, not RUNNING or
 * POWEROFF, locked) goes to ERROR and the job continues with the next one.
 */
import { type JobLists, takeNext, vmEnded } from '#core/jobs.ts';
import type { Execution } from '#core/model.ts';
import { log } from '#platform/log.ts';
import { type JobRecord, jobOfVm, jobs, updateJob } from '../repo/jobs.ts';
import { vms } from '../repo/vms.ts';
import { wakeDispatcher } from '../wake.ts';
import { queueVmBackup } from './backup-queue.ts';

/** What a run queued. */
export interface JobProgress {
  job: JobRecord;
  queued: Execution[];
}

/**
 * Change the job's lists with `first` (a new run, a retry, an ended backup), then queue what
 * {@link takeNext} answers, repeating while some VM could not be queued. `scheduleId` names the
 * scheduled action that started the run.
 */
export async function advanceJob(
  jobId: number,
  first: (job: JobRecord) => JobLists,
  options: { scheduleId?: number } = {},
): Promise<JobProgress> {
  const queued: Execution[] = [];
  let step: (job: JobRecord) => JobLists = first;
  for (;;) {
    const { job, extra: queue } = await updateJob(jobId, (current) => {
      const changed = step(current);
      const next = takeNext({ ...current, ...changed });
      return { set: { ...changed, ...next.lists }, extra: next.queue };
    });
    const failed: number[] = [];
    for (const vmId of queue) {
      try {
        const vm = await vms.get(vmId);
        queued.push(
          await queueVmBackup({ name: job.owner }, vm, {
            datastoreId: job.datastoreId,
            reset: job.config.RESET === 'YES',
            priority: job.priority,
            job: { id: job.id, config: job.config },
            scheduleId: options.scheduleId,
            wake: false,
          }),
        );
      } catch (err) {
        log('warn', 'job VM not queued', {
          jobId,
          vmId,
          error: err instanceof Error ? err.message : String(err),
        });
        failed.push(vmId);
      }
    }
    if (failed.length === 0) {
      if (queued.length) await wakeDispatcher(`backup job ${jobId}: ${queued.length} queued`);
      return { job, queued };
    }
    step = (current) =>
      failed.reduce<JobLists>((lists, vmId) => vmEnded(lists, vmId, false, current.vmIds), current);
  }
}

/**
 * A backup ended in `state`: when its VM is BACKING_UP in a job (single backups of a job's VMs
 * are refused, so it is the job's), record it and queue the next VM of a sequential job. The job
 * is `jobId` when the caller knows it (Release, from its state input), else the VM's
 * BACKUP_JOB_ID.
 */
export async function jobBackupEnded(
  execution: Pick<Execution, 'id' | 'vmId' | 'kind'>,
  state: string,
  jobId?: number,
) {
  if (execution.kind !== 'backup' || execution.vmId === undefined) return;
  const vmId = execution.vmId;
  let job: JobRecord | undefined;
  if (jobId !== undefined) job = await jobs.find(jobId);
  else {
    const vm = await vms.find(vmId);
    job = vm ? await jobOfVm(vm) : undefined;
  }
  if (!job?.backingUpVms.includes(vmId)) return;
  try {
    await advanceJob(job.id, (current) => vmEnded(current, vmId, state === 'SUCCEEDED', current.vmIds));
  } catch (err) {
    // The job may have been deleted meanwhile: the backup itself is done either way.
    log('warn', 'job not advanced', { jobId: job.id, executionId: execution.id, error: String(err) });
  }
}
