/**
 * The backup-job form's pure parts: moving a VM up or down the job's order, and the body of
 * `POST /jobs` / `PATCH /jobs/{id}` (the CreateJobBody / UpdateJobBody of the OpenAPI document).
 */
import type { BackupJob, Operations } from './api.ts';

/** The form's answers. */
export interface JobChoices {
  name: string;
  /** In the order the job backs them up. */
  vmIds: number[];
  datastoreId?: number;
  priority: string;
  execution: 'SEQUENTIAL' | 'PARALLEL';
}

/** `list` with the item at `index` moved by `delta` (-1 up, +1 down); unchanged at an end. */
export function move<T>(list: readonly T[], index: number, delta: -1 | 1): T[] {
  const to = index + delta;
  if (index < 0 || index >= list.length || to < 0 || to >= list.length) return [...list];
  const out = [...list];
  [out[index], out[to]] = [out[to] as T, out[index] as T];
  return out;
}

/** The form's answers of an existing job (for editing). */
export function choicesOf(job: BackupJob): JobChoices {
  return {
    name: job.name,
    vmIds: [...job.vmIds],
    datastoreId: job.datastoreId,
    priority: String(job.priority),
    execution: job.execution,
  };
}

/** The create body of `c`, or what is wrong (field and message). */
export function jobBody(
  c: JobChoices,
): { body: Operations['POST /jobs']['body'] } | { field: keyof JobChoices; message: string } {
  if (!c.name.trim() || c.name.trim().length > 128)
    return { field: 'name', message: 'A name of 1 to 128 characters' };
  if (c.vmIds.length === 0) return { field: 'vmIds', message: 'Add at least one VM' };
  if (c.datastoreId === undefined) return { field: 'datastoreId', message: 'Choose a datastore' };
  if (!/^\d{1,2}$/.test(c.priority.trim())) return { field: 'priority', message: 'A priority from 0 to 99' };
  return {
    body: {
      name: c.name.trim(),
      vmIds: c.vmIds,
      datastoreId: c.datastoreId,
      priority: Number(c.priority),
      execution: c.execution,
    },
  };
}

/**
 * The PATCH body for `job`: only the fields `body` changes, so a running job (whose VM list the
 * API will not change) can still get a new name, priority or mode.
 */
export function jobChanges(
  job: BackupJob,
  body: Operations['POST /jobs']['body'],
): Operations['PATCH /jobs/{id}']['body'] {
  const changes: Operations['PATCH /jobs/{id}']['body'] = {};
  if (body.name !== job.name) changes.name = body.name;
  if (body.vmIds.join(',') !== job.vmIds.join(',')) changes.vmIds = body.vmIds;
  if (body.datastoreId !== job.datastoreId) changes.datastoreId = body.datastoreId;
  if (body.priority !== job.priority) changes.priority = body.priority;
  if (body.execution !== job.execution) changes.execution = body.execution;
  return changes;
}
