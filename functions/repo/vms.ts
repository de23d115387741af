/**
 * VMs table, with its byHost index (hostId + domain: a host's VMs) and byUuid index (the VM a
 * libvirt domain UUID names, whatever host reports it), both read by the inventory.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { Vm } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { moveName, nameOwner, reserveName } from './counters.ts';
import { isTransactionConditionFailed, Table } from './table.ts';

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
 * The VMs recorded with this domain UUID (canonical form, core/contracts/api.ts): one, since
 * {@link createVm} claims the UUID (records from before the claim may share one). Read from the
 * index, so eventually consistent: a record written a moment ago may be missing.
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

/** Scope of the counters-table item that ties a domain UUID to the one VM record it names. */
const UUID_SCOPE = 'vm-uuid';

/**
 * Writes the record of a VM seen for the first time. One with a UUID also claims it, in the same
 * transaction: two inventory reports of the same new domain at once (or a report that read the
 * index before the other's write reached it) create one record, not two, the second of which
 * would leave the first GONE for good. Answers the record that holds the claim when another one
 * does (read consistently), or undefined once `vm` is written. A claim whose record was deleted
 * is taken over.
 */
export async function createVm(vm: Vm): Promise<Vm | undefined> {
  if (!vm.uuid) {
    await vms.put(vm, { expression: 'attribute_not_exists(id)' });
    return undefined;
  }
  const put = vms.putItem(vm, { expression: 'attribute_not_exists(id)' });
  let claim = reserveName(UUID_SCOPE, vm.uuid, vm.id);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: [put, claim] }));
      return undefined;
    } catch (err) {
      if (!isTransactionConditionFailed(err)) throw err;
    }
    const claimed = await nameOwner(UUID_SCOPE, vm.uuid);
    const holder = claimed === undefined ? undefined : await vms.find(claimed);
    if (holder) return holder;
    // Free again, or left by a deleted record: claimed anew, unless it changed meanwhile.
    claim =
      claimed === undefined
        ? reserveName(UUID_SCOPE, vm.uuid, vm.id)
        : moveName(UUID_SCOPE, vm.uuid, claimed, vm.id);
  }
  throw new Error(`the claim of domain UUID ${vm.uuid} kept changing: the next report tries again`);
}
