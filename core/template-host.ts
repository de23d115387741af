/**
 * The last edits of a cleaned restore template (core/template.ts) before a runner defines it on
 * its host: disks pointed at the restored files, passed-through PCI devices that have no host
 * device left out (libvirt would accept them and fail at start), and CPU placement for that
 * host: EMULATOR_CPUS (a host attribute) pins the emulator threads; without it, a VM with a pin
 * policy gets its vCPUs pinned on this host and its emulator follows its pinned CPUs.
 * Pure: no I/O.
 */
import { ValidationError } from './errors.ts';
import { metadataElements } from './template.ts';
import {
  appendChild,
  attr,
  buildXml,
  childrenOf,
  element,
  elements,
  newElement,
  parseXml,
  removeChildren,
  rootElement,
  setAttr,
  tagOf,
  textOf,
  type XmlNode,
} from './template-xml.ts';

const CPUSET = /^\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*$/;

/** CPU numbers of a libvirt cpuset (`0-3,8`); throws ValidationError on anything else. */
export function parseCpuset(cpuset: string, what = 'cpuset'): number[] {
  const text = cpuset.replace(/\s+/g, '');
  if (!CPUSET.test(text)) throw new ValidationError(`${what}: "${cpuset}" is not a CPU list like 0-3,8`);
  const cpus = new Set<number>();
  for (const part of text.split(',')) {
    const [from, to = from] = part.split('-').map(Number) as [number, number?];
    if ((to as number) < from) throw new ValidationError(`${what}: range ${part} is reversed`);
    for (let cpu = from; cpu <= (to as number); cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The shortest cpuset of a list of CPU numbers (`0-3,8`). */
export function formatCpuset(cpus: Iterable<number>): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Disk ids as the inventory numbers them: the `<disk device='disk'>` with a source in qcow2, raw or rbd. */
function numberedDisks(devices: XmlNode): XmlNode[] {
  return elements(devices, 'disk').filter((disk) => {
    if ((attr(disk, 'device') ?? 'disk') !== 'disk') return false;
    const source = element(disk, 'source');
    const type = attr(disk, 'type') ?? 'file';
    const path =
      type === 'file'
        ? attr(source, 'file')
        : type === 'block'
          ? attr(source, 'dev')
          : type === 'network'
            ? attr(source, 'name')
            : type === 'volume'
              ? attr(source, 'volume')
              : undefined;
    if (!path) return false;
    const format =
      type === 'network' && attr(source, 'protocol') === 'rbd'
        ? 'rbd'
        : attr(element(disk, 'driver'), 'type');
    return format === 'qcow2' || format === 'raw' || format === 'rbd';
  });
}

/** The disks of a template as the inventory numbers them, with their volatile mark. */
export function templateDisks(xml: string): { id: number; target: string; volatile: boolean }[] {
  const domain = rootElement(parseXml(xml), 'domain');
  const devices = element(domain, 'devices');
  const volatile = new Set(
    metadataElements(domain, 'disk')
      .filter((d) => /^(yes|true|1)$/i.test(attr(d, 'volatile') ?? ''))
      .map((d) => attr(d, 'target')),
  );
  return (devices ? numberedDisks(devices) : []).map((disk, id) => {
    const target = attr(element(disk, 'target'), 'dev') ?? '';
    return { id, target, volatile: volatile.has(target) };
  });
}

/**
 * Points the template's disks at restored qcow2 files (`paths`: disk id -> file). Numbered disks
 * that were not restored (volatile, or left out of the backup) are removed: they still name the
 * original VM's storage, which two VMs must never share. CD-ROMs and other devices stay.
 */
export function pointDisks(xml: string, paths: ReadonlyMap<number, string>): string {
  const doc = parseXml(xml);
  const devices = element(rootElement(doc, 'domain'), 'devices');
  if (!devices) return buildXml(doc);
  const numbered = numberedDisks(devices);
  for (const [id, path] of paths) {
    const disk = numbered[id];
    if (!disk) throw new ValidationError(`disk ${id} is not part of the template`);
    setAttr(disk, 'type', 'file');
    const list = childrenOf(disk);
    const source = list.findIndex((c) => tagOf(c) === 'source');
    const fresh = newElement('source', { file: path });
    if (source >= 0) list[source] = fresh;
    else appendChild(disk, fresh);
    removeChildren(disk, (c) => ['backingStore', 'auth'].includes(tagOf(c) ?? ''));
    const driver = element(disk, 'driver');
    if (driver) setAttr(driver, 'type', 'qcow2');
    else appendChild(disk, newElement('driver', { name: 'qemu', type: 'qcow2' }));
  }
  const keep = new Set([...paths.keys()].map((id) => numbered[id]));
  removeChildren(devices, (c) => numbered.includes(c) && !keep.has(c));
  return buildXml(doc);
}

/** Where a restored VM is defined. */
export interface HostPlacement {
  /** The host's EMULATOR_CPUS (a cpuset), if it has one. */
  emulatorCpus?: string | undefined;
  /** Number of CPUs of the host (CPU numbers 0..n-1). */
  hostCpus: number;
}

/** The template to define on a host, and notes for the operator about what was changed. */
export function templateForHost(xml: string, placement: HostPlacement): { xml: string; notes: string[] } {
  const doc = parseXml(xml);
  const domain = rootElement(doc, 'domain');
  const notes: string[] = [];
  const devices = element(domain, 'devices');
  if (devices) {
    removeChildren(devices, (device) => {
      const tag = tagOf(device);
      const pci =
        (tag === 'hostdev' && attr(device, 'type') === 'pci') ||
        (tag === 'interface' && attr(device, 'type') === 'hostdev');
      if (!pci || element(element(device, 'source') ?? {}, 'address')) return false;
      return true;
    });
    for (const pci of metadataElements(domain, 'pci')) {
      notes.push(
        `PCI ${attr(pci, 'device') ?? 'device'} ${attr(pci, 'address') ?? '?'} of the backed-up VM left out: assign a device of this host with virsh edit`,
      );
    }
  }
  const emulator = placement.emulatorCpus ? parseCpuset(placement.emulatorCpus, 'EMULATOR_CPUS') : undefined;
  if (emulator?.some((cpu) => cpu >= placement.hostCpus)) {
    throw new ValidationError(
      `EMULATOR_CPUS: ${placement.emulatorCpus} names CPUs this host does not have (it has ${placement.hostCpus})`,
    );
  }
  const pinned =
    metadataElements(domain, 'pin_policy').length > 0 ? pinVcpus(domain, placement.hostCpus) : [];
  const emulatorSet = emulator ?? pinned;
  if (emulatorSet.length > 0) {
    const cputune = cputuneOf(domain);
    removeChildren(cputune, (c) => tagOf(c) === 'emulatorpin');
    appendChild(cputune, newElement('emulatorpin', { cpuset: formatCpuset(emulatorSet) }));
  }
  return { xml: buildXml(doc), notes };
}

/** Pins vCPU i to host CPU i mod hostCpus; answers the CPUs used. */
function pinVcpus(domain: XmlNode, hostCpus: number): number[] {
  const vcpu = element(domain, 'vcpu');
  const count = Number.parseInt(textOf(vcpu).trim() || '1', 10) || 1;
  const cputune = cputuneOf(domain);
  removeChildren(cputune, (c) => tagOf(c) === 'vcpupin');
  const used: number[] = [];
  for (let i = 0; i < count; i++) {
    const cpu = i % Math.max(1, hostCpus);
    used.push(cpu);
    appendChild(cputune, newElement('vcpupin', { vcpu: String(i), cpuset: String(cpu) }));
  }
  return used;
}

function cputuneOf(domain: XmlNode): XmlNode {
  const found = element(domain, 'cputune');
  if (found) return found;
  const cputune = newElement('cputune');
  // Before <devices> reads better, but libvirt accepts any order.
  const list = childrenOf(domain);
  const at = list.findIndex((c) => tagOf(c) === 'devices');
  list.splice(at < 0 ? list.length : at, 0, cputune);
  return cputune;
}
