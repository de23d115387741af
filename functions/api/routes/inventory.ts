/**
 * `PUT /hosts/{id}/inventory`: the runner reports every libvirt domain it sees. VMs are upserted
 * by (host, domain): new domains get new ids, known ones keep their id, backups, lock and
 * ownership; VMs of the host missing from the report become GONE. Only VMs of the reporting host
 * are ever read or written: a report cannot name another host's VMs.
 */
import { update as updateConfig } from '#core/backup-config.ts';
import { InventoryBody, type InventoryVm, parseBody } from '#core/contracts/api.ts';
import { LifeboatError, ValidationError } from '#core/errors.ts';
import { Vm } from '#core/model.ts';
import { DEFAULT_PERMISSIONS } from '#core/permissions.ts';
import { allocateId } from '../../repo/counters.ts';
import { hosts } from '../../repo/hosts.ts';
import { isConditionFailed } from '../../repo/table.ts';
import { vms, vmsOfHost } from '../../repo/vms.ts';
import { assertHostOrAdmin } from '../access.ts';
import { items, pathId, type RouteHandler } from '../http.ts';

const NOT_LOCKED = { expression: 'attribute_not_exists(#lock)', names: { '#lock': 'lock' }, values: {} };

/** BACKUP_CONFIG of a newly seen VM, from the pairs the runner read in its domain metadata. */
function initialConfig(entry: InventoryVm, index: number): Record<string, string> {
  if (!entry.backupConfig) return {};
  const canIncrement = entry.disks.length > 0 && entry.disks.every((d) => d.canIncrement);
  try {
    return updateConfig({}, entry.backupConfig, { canIncrement, append: false });
  } catch (err) {
    if (err instanceof LifeboatError) throw new ValidationError(`vms.${index}.backupConfig: ${err.message}`);
    throw err;
  }
}

/**
 * Owner of the VMs an inventory finds: the admin, whoever reports them (a runner is no user, and
 * an admin reporting for a simulated host should not own what a real one would not).
 */
const NEW_VM_OWNERSHIP = { owner: 'admin', group: 'admin', permissions: DEFAULT_PERMISSIONS } as const;

export const reportInventory: RouteHandler = async (ctx) => {
  const hostId = pathId(ctx);
  // A runner reports its own host only (admins may report any, for tests and simulated hosts).
  assertHostOrAdmin(ctx.user, hostId, 'report the inventory');
  const body = parseBody(InventoryBody, ctx.body);
  const host = await hosts.get(hostId);
  // Validate every entry before the first write: bad input changes nothing.
  const configs = body.vms.map((entry, i) => initialConfig(entry, i));

  const known = new Map((await vmsOfHost(hostId)).map((vm) => [vm.domain, vm]));
  const now = new Date().toISOString();
  for (const [i, entry] of body.vms.entries()) {
    const seen = {
      state: entry.state,
      disks: entry.disks,
      nics: entry.nics,
      template: entry.template,
      uuid: entry.uuid,
    };
    const current = known.get(entry.domain);
    if (current) {
      known.delete(entry.domain);
      // Only what libvirt reports changes; BACKUP_CONFIG in the metadata counts at first sight
      // only, since `vm backupconfig` owns it afterwards. While a backup holds the VM, libvirt
      // shows its disks on the backup's overlays: the disks and template it had are kept.
      const { disks: _disks, template: _template, ...always } = seen;
      try {
        await vms.update(current.id, seen, { condition: NOT_LOCKED });
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        await vms.update(current.id, always);
      }
      continue;
    }
    const vm = Vm.parse({
      ...NEW_VM_OWNERSHIP,
      ...seen,
      id: await allocateId('vm'),
      name: entry.domain,
      hostId,
      domain: entry.domain,
      backups: { BACKUP_CONFIG: configs[i] ?? {}, BACKUP_IDS: [] },
      createdAt: now,
    });
    await vms.put(vm, { expression: 'attribute_not_exists(id)' });
  }
  for (const missing of known.values()) {
    if (missing.state !== 'GONE') await vms.update(missing.id, { state: 'GONE' });
  }
  await hosts.update(host.id, {
    state: 'MONITORED',
    lastHeartbeat: now,
    runnerVersion: body.runnerVersion ?? host.runnerVersion,
  });
  return items((await vmsOfHost(hostId)).sort((a, b) => a.id - b.id));
};
