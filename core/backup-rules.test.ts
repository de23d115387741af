import { describe, expect, it } from 'vitest';
import { assertBackupable, assertBackupableState, flattening } from './backup-rules.ts';
import type { Vm } from './model.ts';

const vm = (state: string, extra: { lock?: string; flatten?: boolean } = {}) => {
  const config: Record<string, string> = extra.flatten ? { ACTIVE_FLATTEN: 'YES' } : {};
  return {
    id: 7,
    state: state as Vm['state'],
    ...(extra.lock && { lock: extra.lock }),
    backups: { BACKUP_IDS: [], BACKUP_CONFIG: config },
  };
};

describe('when a VM may be backed up', () => {
  it('only RUNNING or POWEROFF, with the message users see', () => {
    expect(() => assertBackupableState(vm('RUNNING'))).not.toThrow();
    expect(() => assertBackupableState(vm('POWEROFF'))).not.toThrow();
    for (const state of ['SUSPENDED', 'UNKNOWN', 'GONE']) {
      expect(() => assertBackupableState(vm(state))).toThrow(
        expect.objectContaining({
          name: 'Conflict',
          message: `VM 7 is ${state}: only RUNNING or POWEROFF VMs can be backed up`,
        }),
      );
    }
  });

  it('and, to be queued, neither locked by a backup nor being flattened', () => {
    expect(() => assertBackupable(vm('RUNNING'))).not.toThrow();
    expect(() => assertBackupable(vm('RUNNING', { lock: '12' }))).toThrow(
      'VM 7 has a backup in progress (execution 12)',
    );
    expect(flattening(vm('RUNNING', { flatten: true }))).toBe(true);
    expect(() => assertBackupable(vm('RUNNING', { flatten: true }))).toThrow(
      'VM 7: its increment chain is being flattened for KEEP_LAST (ACTIVE_FLATTEN=YES); back it up when that ends',
    );
    // The state is checked first: a SUSPENDED and locked VM is reported by its state.
    expect(() => assertBackupable(vm('SUSPENDED', { lock: '12' }))).toThrow('is SUSPENDED');
  });
});
