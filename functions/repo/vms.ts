/**
 * VMs table, with its byHost index (hostId + domain: a host's VMs) and byUuid index (the VM a
 * libvirt domain UUID names, whatever host reports it), both read by the inventory.
 */
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

/**
 * The VMs recorded with this domain UUID (canonical form, core/contracts/api.ts): one, unless
 * two hosts reported a new UUID at the same moment. Read from the index, so eventually consistent.
 */
export function vmsByUuid(uuid: string): Promise<Vm[]> {
  return vms.query('byUuid', {
    expression: '#u = :u',
    names: { '#u': 'uuid' },
    values: { ':u': uuid },
  });
}

/**
 * Condition of a write that takes (or re-takes) the VM's backup lock for `executionId`; with
 * `hostId`, only while the VM is still on that host (the inventory may have moved it meanwhile).
 */
export function lockCondition(executionId: string, hostId?: number) {
  const free = {
    expression: 'attribute_not_exists(#lock) OR #lock = :me',
    names: { '#lock': 'lock' } as Record<string, string>,
    values: { ':me': executionId } as Record<string, unknown>,
  };
  if (hostId === undefined) return free;
  return {
    expression: `(${free.expression}) AND #hostId = :host`,
    names: { ...free.names, '#hostId': 'hostId' },
    values: { ...free.values, ':host': hostId },
  };
}

/** Condition of a write that only applies while `executionId` holds the lock. */
export function heldBy(executionId: string) {
  return { expression: '#lock = :me', names: { '#lock': 'lock' }, values: { ':me': executionId } };
}
