import { describe, expect, it } from 'vitest';
import type { BackupJob } from './api.ts';
import { jobBody, jobChanges, move } from './job-form.ts';

describe('backup job form', () => {
  it('moves a VM up and down, and not past an end', () => {
    expect(move([1, 2, 3], 2, -1)).toEqual([1, 3, 2]);
    expect(move([1, 2, 3], 0, 1)).toEqual([2, 1, 3]);
    expect(move([1, 2, 3], 0, -1)).toEqual([1, 2, 3]);
    expect(move([1, 2, 3], 2, 1)).toEqual([1, 2, 3]);
  });

  it('builds the body in the chosen order, or names what is missing', () => {
    const c = {
      name: ' nightly ',
      vmIds: [3, 1],
      datastoreId: 100,
      priority: '5',
      execution: 'PARALLEL' as const,
    };
    expect(jobBody(c)).toEqual({
      body: { name: 'nightly', vmIds: [3, 1], datastoreId: 100, priority: 5, execution: 'PARALLEL' },
    });
    expect(jobBody({ ...c, vmIds: [] })).toMatchObject({ field: 'vmIds' });
    expect(jobBody({ ...c, priority: '100' })).toMatchObject({ field: 'priority' });
  });

  it('edits send only what changed', () => {
    const job = {
      name: 'n',
      vmIds: [3, 1],
      datastoreId: 100,
      priority: 0,
      execution: 'SEQUENTIAL',
    } as BackupJob;
    const body = {
      name: 'n',
      vmIds: [3, 1],
      datastoreId: 100,
      priority: 7,
      execution: 'SEQUENTIAL' as const,
    };
    expect(jobChanges(job, body)).toEqual({ priority: 7 });
    expect(jobChanges(job, { ...body, priority: 0, vmIds: [1, 3] })).toEqual({ vmIds: [1, 3] });
  });
});
