/**
 * Parses libvirt domain XML (`virsh dumpxml`) into the facts the disk drivers and the inventory
 * need: disks with their sources and formats, NICs, and Lifeboat's own metadata element
 * (`<lifeboat:vm xmlns:lifeboat="urn:lifeboat:vm:1">`: volatile disks, BACKUP_CONFIG pairs).
 * Pure: no process, no file system, so it is unit-tested with XML strings.
 */
import { XMLParser } from 'fast-xml-parser';
import { GroupName, NAME_RULE, UserName } from '#core/accounts.ts';
import { ValidationError } from '#core/errors.ts';
import { decodeXmlText } from '#core/xml-text.ts';

/** Namespace of Lifeboat's metadata element inside `<metadata>`. */
export const LIFEBOAT_XMLNS = 'urn:lifeboat:vm:1';

/** One `<disk>` of a domain. */
export interface DomainDisk {
  /** Guest device name (`vda`). */
  target: string;
  /** `disk`, `cdrom`, `floppy`, `lun`. */
  device: string;
  /** `file`, `block`, `network`, `volume`. */
  type: string;
  /** File path, block device, or `pool/image` for rbd; absent for an empty cdrom. */
  source?: string;
  /** Driver format (`qcow2`, `raw`), or `rbd` for an rbd network disk. */
  format?: string;
  /** Device alias (`ua-vda`, `virtio-disk0`) from live XML; its QOM path is `/machine/peripheral/<alias>`. */
  alias?: string;
  /** A network disk's `<auth username>` (in `<disk>` or in `<source>`): the ceph client id of an rbd disk. */
  authUser?: string;
}

/** One `<interface>` of a domain. */
export interface DomainNic {
  type: string;
  mac?: string;
  /** libvirt network name, or the bridge for `type='bridge'`. */
  network?: string;
}

export interface DomainInfo {
  name: string;
  uuid?: string;
  disks: DomainDisk[];
  nics: DomainNic[];
  /** Targets marked `<lifeboat:disk target="vdb" volatile="yes"/>`: never backed up. */
  volatileTargets: string[];
  /** `<lifeboat:backup_config>` pairs, or undefined when the element is absent. */
  backupConfig?: Record<string, string>;
  /**
   * `<lifeboat:owner user="alice" group="web"/>`: who owns the VM when the inventory first sees
   * it. Names are checked by core/accounts.ts' rules; a bad one is left out (see `warnings`).
   */
  owner?: MetadataOwner;
  /** Why parts of our metadata were ignored (never the offending values: they are untrusted). */
  warnings?: string[];
}

/** An owner named in the metadata. */
export interface MetadataOwner {
  user: string;
  group?: string;
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  // Keep every value as text: a uuid or a BACKUP_CONFIG value must not turn into a number.
  parseTagValue: false,
  parseAttributeValue: false,
  // A DOCTYPE's entities are never expanded: attr() and text() decode XML's fixed set only.
  processEntities: false,
  isArray: (name) => ['disk', 'interface'].includes(name) || name.endsWith(':disk'),
});

/** Parses a domain XML; throws ValidationError when it is not one. */
export function parseDomainXml(xml: string): DomainInfo {
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (error) {
    throw new ValidationError(`Domain XML does not parse: ${(error as Error).message}`, { cause: error });
  }
  const domain = asNode(doc.domain);
  const name = text(domain?.name);
  if (!domain || !name) throw new ValidationError('Domain XML has no <domain> with a <name>');
  const devices = asNode(domain.devices) ?? {};
  const meta = lifeboatMetadata(asNode(domain.metadata));
  const info: DomainInfo = {
    name,
    disks: asArray(devices.disk)
      .map(parseDisk)
      .filter((d): d is DomainDisk => d !== undefined),
    nics: asArray(devices.interface).map(parseNic),
    volatileTargets: meta.volatileTargets,
  };
  const uuid = text(domain.uuid);
  if (uuid) info.uuid = uuid;
  if (meta.backupConfig) info.backupConfig = meta.backupConfig;
  if (meta.owner) info.owner = meta.owner;
  if (meta.warnings.length > 0) info.warnings = meta.warnings;
  return info;
}

function parseDisk(node: Node): DomainDisk | undefined {
  const target = attr(node.target, 'dev');
  if (!target) return undefined;
  const type = attr(node, 'type') ?? 'file';
  const disk: DomainDisk = { target, type, device: attr(node, 'device') ?? 'disk' };
  const source = asNode(node.source);
  let path: string | undefined;
  if (type === 'file') path = attr(source, 'file');
  else if (type === 'block') path = attr(source, 'dev');
  else if (type === 'network') path = attr(source, 'name');
  else if (type === 'volume') path = [attr(source, 'pool'), attr(source, 'volume')].filter(Boolean).join('/');
  if (path) disk.source = path;
  const format = type === 'network' && attr(source, 'protocol') === 'rbd' ? 'rbd' : attr(node.driver, 'type');
  if (format) disk.format = format;
  const alias = attr(node.alias, 'name');
  if (alias) disk.alias = alias;
  const authUser = attr(node.auth, 'username') ?? attr(source?.auth, 'username');
  if (type === 'network' && authUser) disk.authUser = authUser;
  return disk;
}

function parseNic(node: Node): DomainNic {
  const type = attr(node, 'type') ?? 'unknown';
  const nic: DomainNic = { type };
  const mac = attr(node.mac, 'address');
  if (mac) nic.mac = mac;
  const network = attr(node.source, 'network') ?? attr(node.source, 'bridge');
  if (network) nic.network = network;
  return nic;
}

/** Finds our element by its namespace URI, whatever prefix the XML gives it. */
function lifeboatMetadata(metadata: Node | undefined): {
  volatileTargets: string[];
  backupConfig?: Record<string, string>;
  owner?: MetadataOwner;
  warnings: string[];
} {
  for (const [key, value] of Object.entries(metadata ?? {})) {
    const node = asNode(Array.isArray(value) ? value[0] : value);
    if (!node) continue;
    const prefix = key.includes(':') ? key.slice(0, key.indexOf(':')) : '';
    const xmlns = prefix ? node[`@_xmlns:${prefix}`] : node['@_xmlns'];
    if (xmlns !== LIFEBOAT_XMLNS) continue;
    const tag = (local: string) => (prefix ? `${prefix}:${local}` : local);
    const volatileTargets = asArray(node[tag('disk')])
      .filter((d) => /^(yes|true|1)$/i.test(attr(d, 'volatile') ?? ''))
      .map((d) => attr(d, 'target'))
      .filter((t): t is string => Boolean(t));
    const result: ReturnType<typeof lifeboatMetadata> = { volatileTargets, warnings: [] };
    const owner = metadataOwner(node[tag('owner')], result.warnings);
    if (owner) result.owner = owner;
    const config = node[tag('backup_config')];
    if (config !== undefined) {
      result.backupConfig = {};
      for (const [k, v] of Object.entries(asNode(config) ?? {})) {
        if (k.startsWith('@_') || k === '#text') continue;
        const local = prefix && k.startsWith(`${prefix}:`) ? k.slice(prefix.length + 1) : k;
        result.backupConfig[local] = text(Array.isArray(v) ? v.at(-1) : v) ?? '';
      }
    }
    return result;
  }
  return { volatileTargets: [], warnings: [] };
}

/**
 * The owner element, if it names a valid user: the domain's XML is written by whoever defines
 * the domain, so a bad or ambiguous value is dropped with a warning, never an error.
 */
function metadataOwner(value: unknown, warnings: string[]): MetadataOwner | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    warnings.push('more than one <lifeboat:owner> element: all ignored');
    return undefined;
  }
  const user = attr(value, 'user');
  if (user === undefined || !UserName.safeParse(user).success) {
    warnings.push(
      `<lifeboat:owner> ignored: its user attribute is missing or not a valid name (it ${NAME_RULE})`,
    );
    return undefined;
  }
  const group = attr(value, 'group');
  if (group === undefined) return { user };
  if (!GroupName.safeParse(group).success) {
    warnings.push(`<lifeboat:owner> group ignored: not a valid group name (it ${NAME_RULE}, never hosts)`);
    return { user };
  }
  return { user, group };
}

function asNode(value: unknown): Node | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Node) : undefined;
}

function asArray(value: unknown): Node[] {
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return list.map((v) => asNode(v) ?? {});
}

function attr(node: unknown, name: string): string | undefined {
  const value = asNode(node)?.[`@_${name}`];
  return typeof value === 'string' && value !== '' ? decodeXmlText(value) : undefined;
}

function text(value: unknown): string | undefined {
  const raw = typeof value === 'string' ? value : asNode(value)?.['#text'];
  return typeof raw === 'string' ? decodeXmlText(raw.trim()) || undefined : undefined;
}
