import { describe, expect, it } from 'vitest';
import { jobBody, move } from './job-form.ts';

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
});
