/**
 * When a VM may be backed up: the one statement of the rules the API (on a request), the
 * scheduled actions and jobs (on queueing) and the Admit step (when the backup starts) all
 * apply. Pure: the callers read the VM.
 */
import { Conflict } from './errors.ts';
import type { Vm } from './model.ts';

/** The VM states a backup can read a consistent disk in. */
export const BACKUPABLE_STATES: readonly Vm['state'][] = ['RUNNING', 'POWEROFF'];

/** Whether the VM's chain is being flattened for KEEP_LAST (its ACTIVE_FLATTEN). */
export function flattening(vm: Pick<Vm, 'backups'>): boolean {
  return vm.backups.BACKUP_CONFIG.ACTIVE_FLATTEN === 'YES';
}

/** 409 message of a backup asked for while the VM's chain is being flattened. */
export function flatteningMessage(vm: Pick<Vm, 'id'>): string {
  return `VM ${vm.id}: its increment chain is being flattened for KEEP_LAST (ACTIVE_FLATTEN=YES); back it up when that ends`;
}

/** 409 message of a VM whose backup lock is held. */
export function lockedMessage(vm: Pick<Vm, 'id' | 'lock'>): string {
  return `VM ${vm.id} has a backup in progress (execution ${vm.lock})`;
}

/** Conflict unless the VM is in a state a backup can read (RUNNING or POWEROFF). */
export function assertBackupableState(vm: Pick<Vm, 'id' | 'state'>): void {
  if (!BACKUPABLE_STATES.includes(vm.state)) {
    throw new Conflict(`VM ${vm.id} is ${vm.state}: only RUNNING or POWEROFF VMs can be backed up`);
  }
}

/**
 * Conflict unless a backup of the VM may be queued now: a backupable state, no backup holding
 * its lock, and its chain not being flattened.
 */
export function assertBackupable(vm: Pick<Vm, 'id' | 'state' | 'lock' | 'backups'>): void {
  assertBackupableState(vm);
  if (vm.lock) throw new Conflict(lockedMessage(vm));
  if (flattening(vm)) throw new Conflict(flatteningMessage(vm));
}
