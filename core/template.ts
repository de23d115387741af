/**
 * Restore template cleaning: turns the libvirt domain XML captured at backup time into the
 * template of a NEW VM that can live beside the original, possibly on another host.
 *
 * Always: a new `<name>`, no `<uuid>` (libvirt makes a new one), no live-only `id`; PCI devices
 * keep everything but their host address (the host's bus/slot/function, what upstream calls
 * SHORT_ADDRESS: another host has other devices there); USB devices with vendor and product ids
 * lose their host bus address (libvirt then selects the device by its ids); NUMA placement
 * loses the host's node ids and CPU sets (`<numatune>`, `<vcpu cpuset>`, `<cputune>` pins) while
 * the guest topology (`<cpu><topology>`, `<cpu><numa>` cells, which name guest vCPUs) stays.
 * What was removed from the host side is noted in Lifeboat's metadata element (the PCI
 * addresses it had, and `pin_policy` PINNED when its vCPUs were pinned), so defining it on a
 * host can honour the VM's pin policy there (core/template-host.ts).
 *
 * NO_NIC drops every `<interface>` (PCI NICs, `type='hostdev'`, included). NO_IP keeps the
 * interfaces and their networks but drops what names an address: `<mac>`, `<ip>`, `<route>`
 * and the IP/IPV6/MAC parameters of a traffic filter.
 * Pure: no I/O.
 */
import { ValidationError } from './errors.ts';
import {
  appendChild,
  attr,
  buildXml,
  childrenOf,
  element,
  elements,
  isEmptyElement,
  newElement,
  parseXml,
  removeChildren,
  rootElement,
  setAttr,
  setText,
  tagOf,
  type XmlNode,
} from './template-xml.ts';

/** Namespace of Lifeboat's metadata element (as in drivers/disk/domain-xml.ts). */
export const LIFEBOAT_XMLNS = 'urn:lifeboat:vm:1';

/** What the restore asks of the template. */
export interface CleanOptions {
  /** Name of the new domain. */
  name: string;
  /** NO_NIC: remove the NICs. */
  noNic?: boolean;
  /** NO_IP: keep NICs and networks, remove MAC and IP addresses. */
  noIp?: boolean;
}

/** libvirt domain names: printable, no `/`, not too long. */
const DOMAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** The cleaned template of a new VM restored from `xml`. Throws ValidationError on a bad XML or name. */
export function cleanTemplate(xml: string, options: CleanOptions): string {
  if (!DOMAIN_NAME.test(options.name))
    throw new ValidationError(`name: "${options.name}" is not a valid VM name`);
  const doc = parseXml(xml);
  const domain = rootElement(doc, 'domain');
  renameDomain(domain, options.name);
  const devices = element(domain, 'devices');
  if (devices) {
    if (options.noNic) removeChildren(devices, (c) => tagOf(c) === 'interface');
    if (options.noIp) for (const nic of elements(devices, 'interface')) removeAddresses(nic);
    const addresses = cleanHostDevices(devices);
    for (const [device, address] of addresses)
      addMetadata(domain, 'pci', { device, address }, 'host address removed at restore');
  }
  if (cleanNuma(domain)) addMetadata(domain, 'pin_policy', {}, 'PINNED');
  return buildXml(doc);
}

function renameDomain(domain: XmlNode, name: string): void {
  setAttr(domain, 'id', undefined);
  const nameNode = element(domain, 'name');
  if (nameNode) setText(nameNode, name);
  else childrenOf(domain).unshift(newElement('name', {}, [{ '#text': name }]));
  removeChildren(domain, (c) => tagOf(c) === 'uuid');
}

const IP_FILTER_PARAMETERS = new Set(['IP', 'IPV6', 'MAC']);

/** NO_IP on one `<interface>`. */
function removeAddresses(nic: XmlNode): void {
  removeChildren(nic, (c) => ['mac', 'ip', 'route'].includes(tagOf(c) ?? ''));
  for (const filter of elements(nic, 'filterref')) {
    removeChildren(filter, (c) => IP_FILTER_PARAMETERS.has((attr(c, 'name') ?? '').toUpperCase()));
  }
}

/** `0000:06:02.0` from a PCI `<address domain bus slot function>`. */
export function pciShortAddress(address: XmlNode): string {
  const hex = (name: string, width: number) =>
    (Number.parseInt(attr(address, name) ?? '0', 16) || 0).toString(16).padStart(width, '0');
  return `${hex('domain', 4)}:${hex('bus', 2)}:${hex('slot', 2)}.${hex('function', 1)}`;
}

/**
 * Removes the host side of passed-through devices; answers [device kind, former address] of
 * each PCI device cleaned (`hostdev` or `interface` for a PCI NIC).
 */
function cleanHostDevices(devices: XmlNode): [string, string][] {
  const cleaned: [string, string][] = [];
  for (const device of childrenOf(devices)) {
    const tag = tagOf(device);
    const type = attr(device, 'type');
    const source = element(device, 'source');
    if (!source) continue;
    const pci = (tag === 'hostdev' && type === 'pci') || (tag === 'interface' && type === 'hostdev');
    if (pci) {
      for (const address of removeChildren(source, (c) => tagOf(c) === 'address')) {
        cleaned.push([tag as string, pciShortAddress(address)]);
      }
    } else if (
      tag === 'hostdev' &&
      type === 'usb' &&
      element(source, 'vendor') &&
      element(source, 'product')
    ) {
      // libvirt finds the device by vendor and product when there is no address.
      removeChildren(source, (c) => tagOf(c) === 'address');
    }
  }
  return cleaned;
}

const PINS = new Set(['vcpupin', 'emulatorpin', 'iothreadpin', 'vcpusched', 'iothreadsched']);

/**
 * Removes host NUMA node ids and host CPU sets, keeps the guest topology. Answers whether the
 * VM had a pin policy (its vCPUs were pinned).
 */
function cleanNuma(domain: XmlNode): boolean {
  removeChildren(domain, (c) => tagOf(c) === 'numatune');
  const vcpu = element(domain, 'vcpu');
  let pinned = false;
  if (vcpu && attr(vcpu, 'cpuset') !== undefined) setAttr(vcpu, 'cpuset', undefined);
  const cputune = element(domain, 'cputune');
  if (cputune) {
    pinned = elements(cputune, 'vcpupin').length > 0;
    // Scheduler settings of pinned threads name threads only, but go with the pins they tune.
    removeChildren(cputune, (c) => PINS.has(tagOf(c) ?? ''));
    if (isEmptyElement(cputune)) removeChildren(domain, (c) => c === cputune);
  }
  for (const vcpuNode of elements(element(domain, 'vcpus') ?? {}, 'vcpu'))
    setAttr(vcpuNode, 'cpuset', undefined);
  return pinned;
}

/** Lifeboat's metadata element of the domain and its prefix, or undefined when it has none. */
export function findLifeboatMetadata(domain: XmlNode): { node: XmlNode; prefix: string } | undefined {
  for (const child of childrenOf(element(domain, 'metadata') ?? {})) {
    const tag = tagOf(child);
    if (!tag) continue;
    const prefix = tag.includes(':') ? tag.slice(0, tag.indexOf(':')) : '';
    if (attr(child, prefix ? `xmlns:${prefix}` : 'xmlns') === LIFEBOAT_XMLNS) return { node: child, prefix };
  }
  return undefined;
}

/** Lifeboat's metadata element of the domain, created (after `<name>`) when absent. */
function lifeboatMetadata(domain: XmlNode): { node: XmlNode; prefix: string } {
  const found = findLifeboatMetadata(domain);
  if (found) return found;
  let metadata = element(domain, 'metadata');
  if (!metadata) {
    metadata = newElement('metadata');
    appendChild(domain, metadata);
  }
  const node = newElement('lifeboat:vm', { 'xmlns:lifeboat': LIFEBOAT_XMLNS });
  appendChild(metadata, node);
  return { node, prefix: 'lifeboat' };
}

/** Adds `<lifeboat:NAME attrs>text</lifeboat:NAME>` to Lifeboat's metadata element. */
function addMetadata(domain: XmlNode, name: string, attrs: Record<string, string>, text: string): void {
  const { node, prefix } = lifeboatMetadata(domain);
  appendChild(node, newElement(prefix ? `${prefix}:${name}` : name, attrs, [{ '#text': text }]));
}

/** Lifeboat metadata elements named `name` (`pci`, `pin_policy`) of a domain. */
export function metadataElements(domain: XmlNode, name: string): XmlNode[] {
  const found = findLifeboatMetadata(domain);
  if (!found) return [];
  return elements(found.node, found.prefix ? `${found.prefix}:${name}` : name);
}
