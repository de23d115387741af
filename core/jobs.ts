/**
 * Backup job runs, as pure transitions of the job's VM lists: a run makes its VMs OUTDATED;
 * {@link takeNext} moves the VMs to queue now to BACKING_UP (all of them for a PARALLEL job,
 * the first for a SEQUENTIAL one when none is backing up); an ended backup moves its VM to
 * UPDATED or ERROR. The handlers persist the lists and queue what `takeNext` answers.
 */
import { Conflict, Forbidden, ValidationError } from './errors.ts';
import type { BackupJob, UserRole } from './model.ts';

/** The four lists of a job (and, from a new run, its start time). */
export type JobLists = Pick<BackupJob, 'outdatedVms' | 'backingUpVms' | 'updatedVms' | 'errorVms'> & {
  lastRunAt?: string;
};

const without = (list: readonly number[], ids: readonly number[]) => list.filter((id) => !ids.includes(id));

/** The lists of a run started `now` over `vmIds` (default: every VM of the job, in order). */
export function startRun(job: BackupJob, now: Date, vmIds: readonly number[] = job.vmIds): JobLists {
  if (job.backingUpVms.length > 0 || job.outdatedVms.length > 0) {
    throw new Conflict(
      `Backup job ${job.id} is already running (VMs ${[...job.backingUpVms, ...job.outdatedVms].join(', ')})`,
    );
  }
  const ordered = job.vmIds.filter((id) => vmIds.includes(id));
  if (ordered.length === 0) throw new Conflict(`Backup job ${job.id} has no VM to back up`);
  return {
    outdatedVms: ordered,
    backingUpVms: [],
    updatedVms: without(job.updatedVms, ordered),
    errorVms: without(job.errorVms, ordered),
    lastRunAt: now.toISOString(),
  };
}

/** A retry started `now`: the VMs in ERROR run again. */
export function retryRun(job: BackupJob, now: Date): JobLists {
  if (job.errorVms.length === 0) throw new Conflict(`Backup job ${job.id} has no VM in error`);
  return startRun(job, now, job.errorVms);
}

/** The VMs to queue now and the lists once they are BACKING_UP. */
export function takeNext(job: BackupJob & JobLists): { lists: JobLists; queue: number[] } {
  const lists: JobLists = {
    outdatedVms: job.outdatedVms,
    backingUpVms: job.backingUpVms,
    updatedVms: job.updatedVms,
    errorVms: job.errorVms,
  };
  let queue: number[] = [];
  if (job.execution === 'PARALLEL') queue = [...job.outdatedVms];
  else if (job.backingUpVms.length === 0 && job.outdatedVms[0] !== undefined) queue = [job.outdatedVms[0]];
  return {
    lists: {
      ...lists,
      outdatedVms: without(lists.outdatedVms, queue),
      backingUpVms: [...lists.backingUpVms, ...queue],
    },
    queue,
  };
}

/**
 * A VM's backup ended (or could not be queued): UPDATED when `ok`, else ERROR. With `order` (the
 * job's VMs) both lists stay in the job's order, whatever order a parallel run ends in.
 */
export function vmEnded(job: JobLists, vmId: number, ok: boolean, order?: readonly number[]): JobLists {
  const place = (list: number[]) => (order ? list.sort((a, b) => order.indexOf(a) - order.indexOf(b)) : list);
  const rest = {
    outdatedVms: without(job.outdatedVms, [vmId]),
    backingUpVms: without(job.backingUpVms, [vmId]),
    updatedVms: without(job.updatedVms, [vmId]),
    errorVms: without(job.errorVms, [vmId]),
  };
  return ok
    ? { ...rest, updatedVms: place([...rest.updatedVms, vmId]) }
    : { ...rest, errorVms: place([...rest.errorVms, vmId]) };
}

/** Check a job's VM list: no duplicates. */
export function checkVmList(vmIds: readonly number[]): void {
  const seen = new Set<number>();
  for (const id of vmIds) {
    if (seen.has(id)) throw new ValidationError(`vmIds: VM ${id} is listed twice`);
    seen.add(id);
  }
}

/** The highest priority a user may give (users up to 49, admins up to 99). */
export function maxPriority(role: UserRole): number {
  return role === 'admin' ? 99 : 49;
}

/**
 * The one check of a requested priority, for every operation a caller queues or schedules
 * (backups, restores, jobs, scheduled actions): above {@link maxPriority} is Forbidden.
 */
export function assertPriority(role: UserRole, priority: number | undefined): void {
  if (priority !== undefined && priority > maxPriority(role)) {
    throw new Forbidden(`priority above ${maxPriority(role)} is for admins`);
  }
}
