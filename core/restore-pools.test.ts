import { describe, expect, it } from 'vitest';
import { assertPoolAllowed } from './restore-pools.ts';

describe('assertPoolAllowed', () => {
  it('lets a restore into a pool the host allows, or into no pool', () => {
    expect(() => assertPoolAllowed('restores', { id: 2, restorePools: ['restores'] })).not.toThrow();
    expect(() => assertPoolAllowed(undefined, { id: 2 })).not.toThrow();
  });

  it('refuses any other pool, naming it and the host', () => {
    expect(() => assertPoolAllowed('vms', { id: 2, restorePools: ['restores'] })).toThrow(
      'pool: host 2 does not allow restores into pool "vms" (RESTORE_POOLS)',
    );
    expect(() => assertPoolAllowed('restores', { id: 2 })).toThrow(/Forbidden|does not allow/);
  });
});
