/** VMs table, with the byHost index (hostId + domain) the inventory upserts through. */
import { Vm } from '#core/model.ts';
import { Table } from './table.ts';

/** The VMs repository (`VM 7 does not exist`). */
export const vms = new Table('vms', Vm, 'VM');

/** Every VM of a host, in domain-name order. */
export function vmsOfHost(hostId: number): Promise<Vm[]> {
  return vms.query('byHost', {
    expression: '#h = :h',
    names: { '#h': 'hostId' },
    values: { ':h': hostId },
  });
}

/** Condition of a write that takes (or re-takes) the VM's backup lock for `executionId`. */
export function lockCondition(executionId: string) {
  return {
    expression: 'attribute_not_exists(#lock) OR #lock = :me',
    names: { '#lock': 'lock' },
    values: { ':me': executionId },
  };
}

/** Condition of a write that only applies while `executionId` holds the lock. */
export function heldBy(executionId: string) {
  return { expression: '#lock = :me', names: { '#lock': 'lock' }, values: { ':me': executionId } };
}
