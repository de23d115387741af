import { describe, expect, it } from 'vitest';
import { Conflict } from './errors.ts';
import { type JobLists, retryRun, startRun, takeNext, vmEnded } from './jobs.ts';
import { BackupJob } from './model.ts';

const now = new Date('2026-11-26T20:00:00Z');
const job = (over: Partial<BackupJob> = {}): BackupJob =>
  BackupJob.parse({
    id: 3,
    name: 'nightly',
    owner: 'alice',
    group: 'users',
    permissions: 'um-------',
    vmIds: [5, 2, 9],
    datastoreId: 100,
    createdAt: '2026-11-26T00:00:00Z',
    ...over,
  });

describe('backup job runs', () => {
  it('a sequential job backs up one VM at a time, in the job order', () => {
    let state = { ...job(), ...startRun(job(), now) };
    const first = takeNext(state);
    expect(first.queue).toEqual([5]);
    state = { ...state, ...first.lists };
    expect(takeNext(state).queue).toEqual([]); // 5 is still backing up
    state = { ...state, ...vmEnded(state, 5, true) };
    const second = takeNext(state);
    expect(second.queue).toEqual([2]);
    state = { ...state, ...second.lists, ...vmEnded(second.lists, 2, false) };
    state = { ...state, ...takeNext(state).lists };
    state = { ...state, ...vmEnded(state, 9, true) };
    expect(state).toMatchObject({ outdatedVms: [], backingUpVms: [], updatedVms: [5, 9], errorVms: [2] });
  });

  it('a parallel run lists its ended VMs in the job order, not the order they ended in', () => {
    const order = [5, 2, 9];
    let lists: JobLists = { ...startRun(job(), now), outdatedVms: [], backingUpVms: [5, 2, 9] };
    for (const [vmId, ok] of [
      [9, true],
      [2, false],
      [5, true],
    ] as const)
      lists = vmEnded(lists, vmId, ok, order);
    expect(lists).toMatchObject({ backingUpVms: [], updatedVms: [5, 9], errorVms: [2] });
  });

  it('a parallel job queues every VM at once', () => {
    const state = { ...job({ execution: 'PARALLEL' }), ...startRun(job(), now) };
    const next = takeNext(state);
    expect(next.queue).toEqual([5, 2, 9]);
    expect(next.lists).toMatchObject({ outdatedVms: [], backingUpVms: [5, 2, 9] });
  });

  it('retry runs the VMs in error only; a running job refuses another run', () => {
    const failed = job({ updatedVms: [5, 9], errorVms: [2] });
    expect(retryRun(failed, now)).toEqual({
      outdatedVms: [2],
      backingUpVms: [],
      updatedVms: [5, 9],
      errorVms: [],
      lastRunAt: now.toISOString(),
    });
    expect(() => retryRun(job(), now)).toThrow('Backup job 3 has no VM in error');
    expect(() => startRun(job({ backingUpVms: [5] }), now)).toThrow(Conflict);
  });
});
