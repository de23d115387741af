/**
 * Jobs table: backup jobs. Their VM lists change from several places at once (the API, every
 * Release of a parallel job), so each change is a read-modify-write guarded by `version`.
 */
import { z } from 'zod';
import { BackupJob } from '#core/model.ts';
import { isConditionFailed, Table } from './table.ts';

/** A job as stored: with the version of its optimistic updates. */
export const JobRecord = BackupJob.extend({ version: z.number().int().nonnegative().default(0) });
export type JobRecord = z.infer<typeof JobRecord>;

/** The backup jobs repository (`Backup job 3 does not exist`). */
export const jobs = new Table('jobs', JobRecord, 'Backup job');

/** The job holding a VM, if any (a VM belongs to at most one job). */
export async function jobOfVm(vmId: number): Promise<JobRecord | undefined> {
  const found = await jobs.list({
    expression: 'contains(#v, :v)',
    names: { '#v': 'vmIds' },
    values: { ':v': vmId },
  });
  return found[0];
}

/**
 * Apply `change` to the job's current record and write the attributes it returns, only if no
 * one else wrote in between (retried on a lost race). Answers the new record and `change`'s extra.
 */
export async function updateJob<T>(
  id: number,
  change: (job: JobRecord) => { set: Partial<JobRecord>; extra: T },
): Promise<{ job: JobRecord; extra: T }> {
  for (let attempt = 0; ; attempt++) {
    const current = await jobs.get(id);
    const { set, extra } = change(current);
    try {
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
    } catch (err) {
      if (!isConditionFailed(err) || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
    }
  }
}

/** The job as users see it (no version). */
export function publicJob(record: JobRecord): BackupJob {
  return BackupJob.parse(record);
}
