/**
 * Jobs table: backup jobs. Their VM lists change from several places at once (the API, every
 * Release of a parallel job), so each change is a read-modify-write guarded by `version`.
 */
import { z } from 'zod';
import { Conflict } from '#core/errors.ts';
import { BackupJob, type Vm } from '#core/model.ts';
import { retry } from '#platform/retry.ts';
import { isConditionFailed, Table } from './table.ts';
import { vms } from './vms.ts';

/** A job as stored: with the version of its optimistic updates. */
export const JobRecord = BackupJob.extend({ version: z.number().int().nonnegative().default(0) });
export type JobRecord = z.infer<typeof JobRecord>;

/** The backup jobs repository (`Backup job 3 does not exist`). */
export const jobs = new Table('jobs', JobRecord, 'Backup job');

/** The id of the job holding a VM (its BACKUP_JOB_ID), if any: a VM belongs to at most one job. */
export function jobIdOf(vm: Pick<Vm, 'backups'>): number | undefined {
  const raw = vm.backups.BACKUP_CONFIG.BACKUP_JOB_ID;
  return raw === undefined || raw === '' ? undefined : Number(raw);
}

/** The job holding a VM, if any: read by the VM's BACKUP_JOB_ID, never by scanning the jobs. */
export async function jobOfVm(vm: Pick<Vm, 'id' | 'backups'>): Promise<JobRecord | undefined> {
  const id = jobIdOf(vm);
  if (id === undefined) return undefined;
  const job = await jobs.find(id);
  return job?.vmIds.includes(vm.id) ? job : undefined;
}

const JOB_KEY = 'backups.BACKUP_CONFIG.BACKUP_JOB_ID';
const jobKeyNames = { '#jb': 'backups', '#jc': 'BACKUP_CONFIG', '#jj': 'BACKUP_JOB_ID' };

/**
 * Marks the VMs as the job's (BACKUP_JOB_ID), each only if no other job holds it: two jobs
 * created at once cannot both take a VM. A stale mark (its job gone, or no longer listing the
 * VM) is taken over. On a refusal the VMs taken by this call are given back and Conflict names
 * the holder.
 */
export async function claimVms(jobId: number, vmIds: readonly number[]): Promise<void> {
  const taken: number[] = [];
  const mark = (vmId: number, expected: string | undefined) =>
    vms.update(
      vmId,
      { [JOB_KEY]: String(jobId) },
      {
        condition: {
          expression:
            expected === undefined
              ? 'attribute_not_exists(#jb.#jc.#jj) OR #jb.#jc.#jj = :job'
              : '#jb.#jc.#jj = :old',
          names: jobKeyNames,
          values: expected === undefined ? { ':job': String(jobId) } : { ':old': expected },
        },
      },
    );
  for (const vmId of vmIds) {
    try {
      try {
        await mark(vmId, undefined);
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        const holder = (await vms.get(vmId)).backups.BACKUP_CONFIG.BACKUP_JOB_ID as string;
        if ((await jobs.find(Number(holder)))?.vmIds.includes(vmId)) {
          throw new Conflict(`VM ${vmId} already belongs to backup job ${holder}`);
        }
        await mark(vmId, holder);
      }
      taken.push(vmId);
    } catch (err) {
      await releaseVms(jobId, taken);
      throw err;
    }
  }
}

/** Clears BACKUP_JOB_ID of the VMs the job holds (a VM gone or held by another job is left alone). */
export async function releaseVms(jobId: number, vmIds: readonly number[]): Promise<void> {
  for (const vmId of vmIds) {
    try {
      await vms.update(
        vmId,
        {},
        {
          remove: [JOB_KEY],
          condition: {
            expression: '#jb.#jc.#jj = :job',
            names: jobKeyNames,
            values: { ':job': String(jobId) },
          },
        },
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }
}

/**
 * Apply `change` to the job's current record and write the attributes it returns, only if no
 * one else wrote in between (retried on a lost race). Answers the new record and `change`'s extra.
 */
export async function updateJob<T>(
  id: number,
  change: (job: JobRecord) => { set: Partial<JobRecord>; extra: T },
): Promise<{ job: JobRecord; extra: T }> {
  return retry(
    async () => {
      const current = await jobs.get(id);
      const { set, extra } = change(current);
      const job = await jobs.update(
        id,
        { ...set, version: current.version + 1 },
        {
          condition: {
            expression: 'attribute_not_exists(#ver) OR #ver = :ver',
            names: { '#ver': 'version' },
            values: { ':ver': current.version },
          },
        },
      );
      return { job, extra };
    },
    // Jittered: the writers racing on one job (each ended backup of a parallel run) spread out.
    { attempts: 21, retryOn: isConditionFailed, delayMs: (n) => 5 + Math.random() * 20 * n },
  );
}

/** The job as users see it (no version). */
export function publicJob(record: JobRecord): BackupJob {
  return BackupJob.parse(record);
}
