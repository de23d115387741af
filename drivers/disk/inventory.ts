/**
 * The runner's inventory of libvirt domains: each domain as the `InventoryVm` shape of
 * `PUT /hosts/{id}/inventory` (disks with virtual sizes, NICs, state, template, BACKUP_CONFIG
 * from Lifeboat's metadata element).
 */
import { mapConcurrent } from '#core/concurrency.ts';
import type { InventoryVm } from '#core/contracts/api.ts';
import { domainNameProblem } from '#core/domain-name.ts';
import { drillIdOfDomain } from '#core/drill.ts';
import type { VmState } from '#core/model.ts';
import { log } from '#platform/log.ts';
import { type DomainDisk, parseDomainXml } from './domain-xml.ts';
import { imageSpec, parseImage, Rbd } from './rbd-cli.ts';
import { domainState, domainXml, imageInfo, type ToolOptions, virsh } from './tools.ts';
import { imageChain, trackedBaseOf } from './tracking-overlay.ts';
import { pointDiskAt } from './work-dir.ts';

type Vm = InventoryVm;
type State = (typeof VmState.options)[number];

/** Maps libvirt's `virsh domstate` words to Lifeboat's VM states (null: the domain is gone). */
export function toVmState(state: string | null): State {
  switch (state) {
    case null:
      return 'GONE';
    case 'running':
    case 'in shutdown':
    case 'blocked':
      return 'RUNNING';
    case 'paused':
    case 'pmsuspended':
      return 'SUSPENDED';
    case 'shut off':
    case 'crashed':
      return 'POWEROFF';
    default:
      return 'UNKNOWN';
  }
}

/** The disk formats Lifeboat backs up; other disks (cdroms, vmdk) are left out of the inventory. */
function inventoryFormat(disk: DomainDisk): 'qcow2' | 'raw' | 'rbd' | undefined {
  if (disk.device !== 'disk' || !disk.source) return undefined;
  return disk.format === 'qcow2' || disk.format === 'raw' || disk.format === 'rbd' ? disk.format : undefined;
}

/**
 * Builds the inventory entry of one domain from its persistent XML (the template: what a restore
 * recreates, never overlays of a backup in flight) and its state. Disk ids are the order of the
 * backed-up-able disks in the XML. Sizes (virtual, and the file's allocation) come from `qemu-img info` (with `-U` only while the
 * domain runs, metadata only), and `rbd info` for rbd images (0 when the cluster does not answer:
 * one unreachable cluster must not hide the host's other VMs).
 */
export async function readDomainInventory(domain: string, options: ToolOptions = {}): Promise<Vm> {
  const state = await domainState(domain, options);
  let template = await domainXml(domain, { ...options, inactive: true });
  const info = parseDomainXml(template);
  const disks: Vm['disks'] = [];
  for (const found of info.disks) {
    // Every read here is metadata (sizes, the backing chain) with -U, whether the VM runs or
    // not: without it qemu-img takes a shared lock that refuses writers, and the VM started (or
    // an operator's qemu tool run) in that moment fails with "Failed to get write lock". The
    // inventory runs on every libvirt event, so a start right after a stop met it.
    // A disk on one of our tracking overlays (INCREMENT_MODE=SNAPSHOT) is its base file.
    const base = await trackedBase(found, options);
    if (base) template = pointDiskAt(template, found.target, base.source, base.format);
    const disk = base ? { ...found, ...base } : found;
    const format = inventoryFormat(disk);
    if (!format || !disk.source) continue;
    // rbd: `rbd du` walks every object without fast-diff, too slow for each minute: unknown.
    const sizes: { 'virtual-size': number; 'actual-size'?: number } =
      format === 'rbd'
        ? { 'virtual-size': await rbdSize(disk.source, disk.authUser, options.signal) }
        : await imageInfo(disk.source, { format, shared: true, signal: options.signal });
    const allocated = sizes['actual-size'];
    disks.push({
      id: disks.length,
      target: disk.target,
      source: disk.source,
      format,
      size: sizes['virtual-size'],
      // What a full backup of it writes at most (the estimate admission checks FREE with).
      ...(allocated !== undefined && { allocated }),
      volatile: info.volatileTargets.includes(disk.target),
      // Changed-block tracking needs persistent bitmaps: qcow2 files (or rbd's own diffs).
      canIncrement: format !== 'raw',
    });
  }
  const vm: Vm = {
    domain: info.name,
    state: toVmState(state),
    disks,
    nics: info.nics.map((nic, id) => ({
      id,
      ...(nic.network ? { network: nic.network } : {}),
      ...(nic.mac ? { mac: nic.mac } : {}),
    })),
    template,
  };
  if (info.uuid) vm.uuid = info.uuid;
  if (info.backupConfig) vm.backupConfig = info.backupConfig;
  if (info.owner) vm.owner = info.owner;
  // Untrusted metadata: a bad owner is left out and said so, the rest of the VM is reported.
  for (const warning of info.warnings ?? [])
    log('warn', 'domain metadata ignored', { domain: info.name, warning });
  return vm;
}

/** Deadline of the inventory's `rbd info` (it runs for every rbd disk, every minute). */
const RBD_INFO_TIMEOUT_MS = 15_000;

/** Virtual size of an rbd image on the host's cluster, as the disk's client; 0 when unknown. */
async function rbdSize(source: string, clientId: string | undefined, signal?: AbortSignal): Promise<number> {
  try {
    const rbd = new Rbd({ timeoutMs: RBD_INFO_TIMEOUT_MS }, clientId);
    const info = await rbd.json<{ size?: unknown }>(['info', imageSpec(parseImage(source))], { signal });
    return typeof info.size === 'number' && Number.isSafeInteger(info.size) && info.size >= 0 ? info.size : 0;
  } catch (error) {
    if (signal?.aborted) throw error;
    return 0;
  }
}

/** The base file and format of a disk whose source is a tracking overlay of it, else undefined. */
async function trackedBase(
  disk: DomainDisk,
  options: ToolOptions,
): Promise<{ source: string; format: string } | undefined> {
  const tracked = disk.type === 'file' && disk.source ? trackedBaseOf(disk.source) : undefined;
  if (!tracked || !disk.source) return undefined;
  // Metadata only (-U, see readDomainInventory): which files the chain is made of, and their formats.
  const chain = await imageChain(disk.source, { shared: true, signal: options.signal }).catch(() => []);
  const base = chain.find((e) => e.path === tracked.base);
  return base ? { source: base.path, format: base.format } : undefined;
}

/**
 * Every domain libvirt knows on this host, running or not; domains that vanish meanwhile are
 * skipped, and so are those whose name virsh would read as an id, a UUID or an option (reading
 * them could describe another domain; the API refuses them too, core/domain-name.ts), and a
 * restore drill's throwaway domain (core/drill.ts), which lives a few seconds and is no VM.
 */
export async function readHostInventory(options: ToolOptions = {}): Promise<Vm[]> {
  const names = (await virsh(['list', '--all', '--name'], options))
    .split('\n')
    .map((n) => n.trim())
    .filter((n) => n !== '' && domainNameProblem(n) === undefined && drillIdOfDomain(n) === undefined);
  // A few domains at a time: each costs several tool runs, mostly waiting on libvirtd, and a
  // report that libvirt's events trigger should land within a second or two.
  const vms = await mapConcurrent(names, READ_CONCURRENCY, async (name) => {
    try {
      return await readDomainInventory(name, options);
    } catch (error) {
      // Undefined or gone meanwhile: not in the inventory; any other failure is the report's.
      if ((await domainState(name, options)) !== null) throw error;
      return undefined;
    }
  });
  return vms.filter((vm): vm is Vm => vm !== undefined);
}

/** Domains read at once by {@link readHostInventory}. */
const READ_CONCURRENCY = 4;
