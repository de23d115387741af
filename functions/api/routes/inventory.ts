/**
 * `PUT /hosts/{id}/inventory`: the runner reports every libvirt domain it sees. A VM is its
 * domain UUID, on whatever host reports it:
 * - a UUID known on this host is that VM (renamed if the domain name changed): it keeps its id,
 *   backups, lock and ownership; an unknown UUID is a new VM, even under the name of an old one
 *   (which goes GONE with its history untouched);
 * - a UUID known on another host A moves the VM here (same id, chain, BACKUP_CONFIG, schedules,
 *   owner; `hostId` changes and the move is appended to `moves`) only when A no longer reports it
 *   (GONE there) or A is OFFLINE, DISABLED or removed, and no backup holds it. Otherwise the entry is
 *   refused: the rest of the report applies, the answer lists it under `refused` with the reason,
 *   and a warning is logged. So a host cannot take a VM by copying its UUID while it runs
 *   elsewhere; a migrated VM moves at the first report of its new host after its old one stopped
 *   listing it (a live migration leaving the domain defined on the source needs
 *   `--undefinesource`, or an undefine there), and a locked one once its backup ends.
 * - an entry without a UUID (older runners, simulated hosts) is matched by domain name among
 *   this host's VMs, as before; a record that never had a UUID takes the first one reported
 *   under its name on its host.
 * VMs of the host matched by no entry become GONE. Only this host's VMs and VMs named by a UUID
 * it reports are read; only those and the moved ones are written.
 */
import { GroupName, UserName } from '#core/accounts.ts';
import { update as updateConfig } from '#core/backup-config.ts';
import { InventoryBody, type InventoryVm, parseBody } from '#core/contracts/api.ts';
import { LifeboatError, ValidationError } from '#core/errors.ts';
import { type Host, MAX_VM_MOVES, type User, Vm, type VmMove } from '#core/model.ts';
import { DEFAULT_PERMISSIONS, type Owned } from '#core/permissions.ts';
import { log } from '#platform/log.ts';
import { allocateId } from '../../repo/counters.ts';
import { hosts } from '../../repo/hosts.ts';
import { isConditionFailed } from '../../repo/table.ts';
import { createVm, vms, vmsByUuid, vmsOfHost } from '../../repo/vms.ts';
import { assertHostOrAdmin } from '../access.ts';
import { pathId, type RouteHandler } from '../http.ts';
import { findOwner, isOwnerGroup } from './owner-names.ts';

const NOT_LOCKED = { expression: 'attribute_not_exists(#lock)', names: { '#lock': 'lock' }, values: {} };

/** An entry of a report that changed nothing: its UUID names a VM this host may not take (yet). */
export interface RefusedEntry {
  domain: string;
  uuid: string;
  vmId: number;
  reason: string;
}

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
 * Owner of the VMs an inventory finds when neither their metadata nor the host names one: the
 * admin, whoever reports them (a runner is no user, and an admin reporting for a simulated host
 * should not own what a real one would not).
 */
const NEW_VM_OWNERSHIP: Owned = { owner: 'admin', group: 'admin', permissions: DEFAULT_PERMISSIONS };

/**
 * Ownership of a VM seen for the first time: the owner its metadata names (`<lifeboat:owner>`),
 * else the host's default owner, else the admin. The group: the one named if it exists, else the
 * owner's own. The metadata is untrusted (whoever defines the domain writes it): a bad or
 * unknown name is a warning and the next choice, never an error. Lookups are cached per report.
 */
function ownerChooser(host: Host): (entry: InventoryVm) => Promise<Owned> {
  const userCache = new Map<string, Promise<User | undefined>>();
  const groupCache = new Map<string, Promise<boolean>>();
  const user = (name: string) => cached(userCache, name, () => findOwner(name));
  const group = (name: string) => cached(groupCache, name, () => isOwnerGroup(name));
  const pick = async (
    name: string | undefined,
    groupName: string | undefined,
    from: string,
    warn: (message: string, fields?: Record<string, unknown>) => void,
  ): Promise<Owned | undefined> => {
    if (name === undefined) return undefined;
    if (!UserName.safeParse(name).success)
      return void warn(`${from} owner is not a valid user name: ignored`);
    const found = await user(name);
    if (!found) return void warn(`${from} owner does not exist: ignored`, { user: name });
    let chosen = found.group;
    if (groupName !== undefined) {
      if (GroupName.safeParse(groupName).success && (await group(groupName))) chosen = groupName;
      else warn(`${from} group is not a group: the owner's own group instead`, { user: name });
    }
    return { owner: found.name, group: chosen, permissions: DEFAULT_PERMISSIONS };
  };
  return async (entry) => {
    const warn = (message: string, fields: Record<string, unknown> = {}) =>
      log('warn', message, { hostId: host.id, domain: entry.domain, uuid: entry.uuid, ...fields });
    return (
      (await pick(entry.owner?.user, entry.owner?.group, 'metadata', warn)) ??
      (await pick(host.defaultOwner, host.defaultGroup, "host's default", warn)) ??
      NEW_VM_OWNERSHIP
    );
  };
}

function cached<T>(cache: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  const known = cache.get(key);
  if (known) return known;
  const value = load();
  cache.set(key, value);
  return value;
}

/** The record to prefer among several: one still seen over a GONE one, then the newest. */
function preferred(list: readonly Vm[]): Vm | undefined {
  return [...list].sort((a, b) => Number(a.state === 'GONE') - Number(b.state === 'GONE') || b.id - a.id)[0];
}

/** Where an entry's VM is: on this host, on another one, or nowhere yet. */
type Match = { here: Vm } | { elsewhere: Vm } | undefined;

async function match(entry: InventoryVm, hostId: number, byDomain: Map<string, Vm>): Promise<Match> {
  const legacy = byDomain.get(entry.domain);
  if (!entry.uuid) return legacy && { here: legacy };
  const found = await vmsByUuid(entry.uuid);
  const here = preferred(found.filter((vm) => vm.hostId === hostId));
  if (here) return { here };
  const elsewhere = preferred(found);
  if (elsewhere) return { elsewhere };
  // A record from before UUIDs were reported: the UUID completes it. One with another UUID is
  // another domain, whatever its name.
  if (legacy && !legacy.uuid) return { here: legacy };
  return undefined;
}

/**
 * Move `vm` to `hostId` if its host let it go; the reason it stays otherwise. Conditional on the
 * record as read (host, unlocked, and still GONE when that was the reason), so a report of the
 * old host or a backup admitted meanwhile wins.
 */
async function takeOver(
  vm: Vm,
  hostId: number,
  seen: Record<string, unknown>,
  now: string,
): Promise<string | undefined> {
  const from = await hosts.find(vm.hostId);
  const reason: VmMove['reason'] | undefined =
    vm.state === 'GONE'
      ? 'GONE'
      : !from
        ? 'REMOVED'
        : from.state === 'OFFLINE' || from.state === 'DISABLED'
          ? from.state
          : undefined;
  if (!reason) return `VM ${vm.id} is ${vm.state} on host ${vm.hostId}, which still reports it`;
  if (vm.lock)
    return `VM ${vm.id} has a backup in progress on host ${vm.hostId} (execution ${vm.lock}): it moves once the backup ends`;
  const move: VmMove = { from: vm.hostId, to: hostId, at: now, domain: vm.domain, reason };
  const moves = [...(vm.moves ?? []), move].slice(-MAX_VM_MOVES);
  try {
    await vms.update(
      vm.id,
      { ...seen, hostId, moves },
      {
        condition: {
          expression: `#host = :from AND attribute_not_exists(#lock)${vm.state === 'GONE' ? ' AND #state = :gone' : ''}`,
          names: { '#host': 'hostId', '#lock': 'lock', ...(vm.state === 'GONE' && { '#state': 'state' }) },
          values: { ':from': vm.hostId, ...(vm.state === 'GONE' && { ':gone': 'GONE' }) },
        },
      },
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    return `VM ${vm.id} changed on host ${vm.hostId} meanwhile: the next report tries again`;
  }
  log('info', 'VM moved', { vmId: vm.id, from: vm.hostId, to: hostId, reason });
  return undefined;
}

export const reportInventory: RouteHandler = async (ctx) => {
  const hostId = pathId(ctx);
  // A runner reports its own host only (admins may report any, for tests and simulated hosts).
  assertHostOrAdmin(ctx.user, hostId, 'report the inventory');
  const body = parseBody(InventoryBody, ctx.body);
  const host = await hosts.get(hostId);
  // Validate every entry before the first write: bad input changes nothing.
  const configs = body.vms.map((entry, i) => initialConfig(entry, i));

  // Oldest first, so the preferred record of a name is the last set: still seen, then newest.
  const mine = (await vmsOfHost(hostId)).sort((a, b) => a.id - b.id);
  const byDomain = new Map<string, Vm>();
  for (const vm of mine) {
    const other = byDomain.get(vm.domain);
    if (!other || preferred([other, vm]) === vm) byDomain.set(vm.domain, vm);
  }
  const unseen = new Map(mine.map((vm) => [vm.id, vm]));
  const refused: RefusedEntry[] = [];
  const ownerOf = ownerChooser(host);
  const now = new Date().toISOString();
  for (const [i, entry] of body.vms.entries()) {
    const seen = {
      domain: entry.domain,
      state: entry.state,
      disks: entry.disks,
      nics: entry.nics,
      template: entry.template,
      uuid: entry.uuid,
    };
    let found = await match(entry, hostId, byDomain);
    if (!found) {
      const vm = Vm.parse({
        ...(await ownerOf(entry)),
        ...seen,
        id: await allocateId('vm'),
        name: entry.domain,
        hostId,
        backups: { BACKUP_CONFIG: configs[i] ?? {}, BACKUP_IDS: [] },
        createdAt: now,
      });
      // Another report created the record of this UUID meanwhile: this entry is about that one.
      const holder = await createVm(vm);
      if (!holder) continue;
      found = holder.hostId === hostId ? { here: holder } : { elsewhere: holder };
    }
    if ('here' in found) {
      const current = found.here;
      unseen.delete(current.id);
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
    const reason = await takeOver(found.elsewhere, hostId, seen, now);
    if (reason) {
      // Checked by the regex: a UUID, never free text in the log.
      const uuid = entry.uuid ?? '';
      refused.push({ domain: entry.domain, uuid, vmId: found.elsewhere.id, reason });
      log('warn', 'inventory entry refused', { hostId, vmId: found.elsewhere.id, uuid, reason });
    }
  }
  for (const missing of unseen.values()) {
    if (missing.state !== 'GONE') await vms.update(missing.id, { state: 'GONE' });
  }
  await recordReport(host, now, body.runnerVersion);
  const items = (await vmsOfHost(hostId)).sort((a, b) => a.id - b.id);
  return { statusCode: 200, body: { items, refused } };
};

/**
 * The host's report time and runner version; an OFFLINE (or new) host is MONITORED again, while
 * a DISABLED one stays so (conditional: an admin's disable racing the report wins).
 */
async function recordReport(host: Host, now: string, runnerVersion: string | undefined): Promise<void> {
  const seen = { lastHeartbeat: now, runnerVersion: runnerVersion ?? host.runnerVersion };
  if (host.state !== 'DISABLED') {
    try {
      await hosts.update(
        host.id,
        { ...seen, state: 'MONITORED' },
        { condition: { expression: '#s <> :d', names: { '#s': 'state' }, values: { ':d': 'DISABLED' } } },
      );
      return;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }
  await hosts.update(host.id, seen);
}
