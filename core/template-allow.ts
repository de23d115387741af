/**
 * A restored VM template is untrusted input: whoever could write to the backup (or to the VM's
 * definition before the backup) chose it, and the runner defines it as root on another host.
 * {@link allowTemplate} rebuilds it from an allow-list, so nothing in it can make libvirt or
 * QEMU read, write or run something of the host. Everything left out is named in a note for the
 * operator (the restore's `notes`). Idempotent: a template it already rebuilt passes unchanged,
 * with no notes. Pure: no I/O.
 *
 * Domain level: kept are name, uuid, genid, title, description, metadata, memory settings
 * (maxMemory, memory, currentMemory, memoryBacking, memtune), blkiotune, vcpu(s), iothreads,
 * cputune, numatune, sysinfo (without fw_cfg entries read from a host `file`), os (below),
 * features, cpu, clock, the on_* actions, pm, perf, keywrap, launchSecurity, throttlegroups and
 * devices (below). Dropped: every namespaced element (`qemu:commandline`, `qemu:override`, ...:
 * raw QEMU options), `seclabel` (a restored VM gets this host's default confinement, never
 * `type='none'` or a root DAC label), `resource` (cgroup placement), `bootloader`, `idmap`, and
 * anything unknown.
 *
 * `<os>`: type, boot, bootmenu, smbios, bios and firmware stay; a `loader` only under
 * `/usr/share/` (the distribution's firmware); `nvram` only as a template under `/usr/share/`
 * (libvirt makes the VM a fresh variable store; the backed-up VM's own file is never shared).
 * Dropped: kernel, initrd, dtb, cmdline, acpi tables (host files QEMU reads).
 *
 * `<devices>`:
 * - `disk`: only file disks whose source is one of `diskFiles` (the restored qcow2 files), with
 *   a rebuilt `<source file>` and no backingStore, mirror, auth, encryption or reservations.
 *   CD-ROMs and floppies stay, ejected (a medium is a file or device of the original host). Host
 *   block devices, network disks, LUNs and disks naming any other file are dropped.
 * - `interface` of type network, bridge, direct, user, ethernet, mcast, server, client, udp or
 *   null, without `script`/`downscript` (run as root on the host), without `backend` tap/vhost
 *   device paths or a passt log file, without a `rom` file. hostdev, vhostuser, vdpa: dropped.
 * - `controller`, `video`, `memballoon`, `watchdog`, `hub`, `panic`, `vsock`, `iommu`, `sound`
 *   (any `rom` file removed).
 * - `input` of type mouse, tablet or keyboard (evdev and passthrough read host devices).
 * - `graphics` vnc, spice and egl-headless, without a unix `socket` or a GL `rendernode`.
 * - `serial`, `console`, `parallel` of type pty only, without a `log` file (virtlogd writes it
 *   as root) or a source.
 * - `channel` of type spicevmc or qemu-vdagent, and virtio `unix` channels (the guest agent)
 *   with their socket path removed: libvirt picks one in its own folder.
 * - `rng` with the builtin backend or a `random` backend on /dev/urandom or /dev/random.
 * - `tpm` with the emulator backend (no encryption secret of this host, no state path).
 * - `audio` of type none or spice. `memory` of model dimm, virtio-mem or sgx-epc (nvdimm and
 *   virtio-pmem map host files). `emulator` only as a distribution path (/usr/bin/qemu-system-*,
 *   /usr/libexec/qemu-kvm, /usr/bin/kvm); otherwise libvirt chooses.
 * - Everything else is dropped: filesystem, hostdev, redirdev, redirfilter, smartcard, shmem,
 *   lease, chardevs backed by a file, socket, tcp, udp or host device, crypto, nvram devices, and
 *   anything unknown.
 */
import {
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

/** The rebuilt template, and one note per thing left out or changed. */
export interface AllowedTemplate {
  xml: string;
  notes: string[];
}

const DOMAIN_CHILDREN = new Set([
  'name',
  'uuid',
  'genid',
  'title',
  'description',
  'metadata',
  'maxMemory',
  'memory',
  'currentMemory',
  'memoryBacking',
  'memtune',
  'blkiotune',
  'vcpu',
  'vcpus',
  'iothreads',
  'iothreadids',
  'defaultiothread',
  'cputune',
  'numatune',
  'sysinfo',
  'os',
  'features',
  'cpu',
  'clock',
  'on_poweroff',
  'on_reboot',
  'on_crash',
  'on_lockfailure',
  'pm',
  'perf',
  'devices',
  'keywrap',
  'launchSecurity',
  'throttlegroups',
]);

const DOMAIN_DROP_REASONS: Record<string, string> = {
  seclabel: 'a restored VM runs under this host’s default confinement',
  resource: 'a restored VM gets this host’s default cgroup placement',
  bootloader: 'it runs a host program',
  bootloader_args: 'it goes with a host bootloader program',
  idmap: 'it maps host user ids',
};

const OS_CHILDREN = new Set(['type', 'boot', 'bootmenu', 'smbios', 'bios', 'firmware', 'loader', 'nvram']);
const FIRMWARE_DIR = '/usr/share/';

const DISK_CHILDREN = new Set([
  'driver',
  'source',
  'target',
  'address',
  'alias',
  'boot',
  'serial',
  'wwn',
  'vendor',
  'product',
  'iotune',
  'blockio',
  'geometry',
  'readonly',
  'shareable',
  'transient',
  'throttlefilters',
]);

const NIC_TYPES = new Set([
  'network',
  'bridge',
  'direct',
  'user',
  'ethernet',
  'mcast',
  'server',
  'client',
  'udp',
  'null',
]);
const NIC_CHILDREN = new Set([
  'mac',
  'source',
  'model',
  'target',
  'boot',
  'rom',
  'filterref',
  'tune',
  'driver',
  'backend',
  'address',
  'alias',
  'link',
  'mtu',
  'bandwidth',
  'vlan',
  'virtualport',
  'ip',
  'route',
  'coalesce',
  'teaming',
  'port',
  'guest',
  'acpi',
  'portForward',
]);

/** Devices kept as they are (a `rom` file aside): they name nothing of the host. */
const PLAIN_DEVICES = new Set([
  'controller',
  'video',
  'memballoon',
  'watchdog',
  'hub',
  'panic',
  'vsock',
  'iommu',
  'sound',
]);

const DEVICE_DROP_REASONS: Record<string, string> = {
  hostdev: 'it passes a host device through',
  filesystem: 'it shares a host folder with the guest',
  redirdev: 'it redirects a host USB device or socket',
  redirfilter: 'it goes with redirected USB devices',
  smartcard: 'it reads a host smartcard, certificates or socket',
  shmem: 'it maps host shared memory',
  lease: 'it names a host lock file',
};

const EMULATOR = /^\/usr\/(bin|libexec)\/(qemu-system-[a-z0-9_]+|qemu-kvm|kvm)$/;
const RANDOM_SOURCES = new Set(['/dev/urandom', '/dev/random']);
const PTY_CHILDREN = new Set(['target', 'address', 'alias']);

/**
 * Rebuilds a restored template from the allow-list above. `diskFiles` are the restored disk
 * files, the only host files a disk of the result may name. Throws ValidationError when the XML
 * does not parse or is not a domain.
 */
export function allowTemplate(xml: string, diskFiles: Iterable<string>): AllowedTemplate {
  const doc = parseXml(xml);
  const domain = rootElement(doc, 'domain');
  const notes: string[] = [];
  const files = new Set(diskFiles);

  removeChildren(domain, (child) => {
    const tag = tagOf(child) as string;
    if (DOMAIN_CHILDREN.has(tag)) return false;
    const reason = tag.includes(':')
      ? 'it passes raw options to QEMU'
      : (DOMAIN_DROP_REASONS[tag] ?? 'not an element a restored VM may carry');
    notes.push(`dropped <${tag}>: ${reason}`);
    return true;
  });
  const os = element(domain, 'os');
  if (os) cleanOs(os, notes);
  const sysinfo = element(domain, 'sysinfo');
  if (sysinfo) cleanSysinfo(sysinfo, notes);
  const devices = element(domain, 'devices');
  if (devices) cleanDevices(devices, files, notes);
  return { xml: buildXml(doc), notes };
}

function cleanOs(os: XmlNode, notes: string[]): void {
  removeChildren(os, (child) => {
    const tag = tagOf(child) as string;
    if (!OS_CHILDREN.has(tag)) {
      const what = deepText(child).trim();
      notes.push(`dropped <os><${tag}>${what ? ` ${what}` : ''}: QEMU would read it from this host`);
      return true;
    }
    if (tag === 'loader') {
      const path = textOf(child).trim();
      if (path && !isFirmwarePath(path)) {
        notes.push(`dropped <os><loader> ${path}: only firmware under ${FIRMWARE_DIR} is used`);
        return true;
      }
    }
    if (tag === 'nvram') {
      const path = textOf(child).trim();
      const template = attr(child, 'template');
      if (path || element(child, 'source') || (template !== undefined && !isFirmwarePath(template))) {
        notes.push(
          `dropped <os><nvram>${path ? ` ${path}` : ''}: libvirt makes the restored VM a fresh variable store`,
        );
        return true;
      }
    }
    return false;
  });
}

function isFirmwarePath(path: string): boolean {
  return path.startsWith(FIRMWARE_DIR) && !path.split('/').some((p) => p === '..' || p === '.');
}

function cleanSysinfo(sysinfo: XmlNode, notes: string[]): void {
  const prune = (node: XmlNode) => {
    removeChildren(node, (child) => {
      const file = attr(child, 'file');
      if (file === undefined) return false;
      notes.push(`dropped <sysinfo> entry ${attr(child, 'name') ?? ''} read from host file ${file}`.trim());
      return true;
    });
    for (const child of childrenOf(node)) if (tagOf(child)) prune(child);
  };
  prune(sysinfo);
}

function cleanDevices(devices: XmlNode, files: ReadonlySet<string>, notes: string[]): void {
  const droppedAudio = new Set<string>();
  removeChildren(devices, (device) => {
    const reason = checkDevice(device, files, notes);
    if (reason === undefined) return false;
    notes.push(`dropped ${label(device)}: ${reason}`);
    if (tagOf(device) === 'audio' && attr(device, 'id')) droppedAudio.add(attr(device, 'id') as string);
    return true;
  });
  // Sound cards and displays naming a dropped audio backend would not define.
  if (droppedAudio.size > 0) {
    for (const device of childrenOf(devices)) {
      if (tagOf(device) === undefined) continue;
      removeChildren(device, (c) => tagOf(c) === 'audio' && droppedAudio.has(attr(c, 'id') ?? ''));
    }
  }
}

/** Why a device is dropped, or undefined when it stays (possibly edited, with notes). */
function checkDevice(device: XmlNode, files: ReadonlySet<string>, notes: string[]): string | undefined {
  const tag = tagOf(device) as string;
  const type = attr(device, 'type');
  if (PLAIN_DEVICES.has(tag)) {
    stripRomFile(device, tag, notes);
    return undefined;
  }
  switch (tag) {
    case 'disk':
      return checkDisk(device, files, notes);
    case 'interface':
      return checkInterface(device, notes);
    case 'input':
      if (!['mouse', 'tablet', 'keyboard'].includes(type ?? '') || element(device, 'source'))
        return 'it reads a host input device';
      return undefined;
    case 'graphics':
      return checkGraphics(device, notes);
    case 'serial':
    case 'console':
    case 'parallel':
      if (type !== 'pty')
        return 'only pty consoles and serial ports are restored (others are host files or sockets)';
      keepOnly(device, PTY_CHILDREN, `${tag}`, notes);
      return undefined;
    case 'channel':
      return checkChannel(device, notes);
    case 'rng':
      return checkRng(device);
    case 'tpm':
      return checkTpm(device, notes);
    case 'audio':
      return type === 'none' || type === 'spice' ? undefined : 'it plays to or records from the host';
    case 'memory':
      return ['dimm', 'virtio-mem', 'sgx-epc'].includes(attr(device, 'model') ?? '')
        ? undefined
        : 'it maps a host file into the guest';
    case 'emulator':
      return EMULATOR.test(textOf(device).trim())
        ? undefined
        : 'a custom emulator is a host program; libvirt chooses this host’s QEMU';
    default:
      return DEVICE_DROP_REASONS[tag] ?? 'not a device kind a restored VM may carry';
  }
}

function checkDisk(disk: XmlNode, files: ReadonlySet<string>, notes: string[]): string | undefined {
  const device = attr(disk, 'device') ?? 'disk';
  const type = attr(disk, 'type') ?? 'file';
  const target = attr(element(disk, 'target'), 'dev') ?? '?';
  if (device === 'cdrom' || device === 'floppy') {
    const medium = hostPath(element(disk, 'source'));
    const before = childrenOf(disk).length;
    removeChildren(disk, (c) => !DISK_CHILDREN.has(tagOf(c) ?? '') || tagOf(c) === 'source');
    if (type !== 'file') setAttr(disk, 'type', 'file');
    if (medium !== undefined || childrenOf(disk).length !== before || type !== 'file') {
      notes.push(
        `ejected ${device} ${target}${medium ? ` (was ${medium})` : ''}: its medium is of the original host`,
      );
    }
    return undefined;
  }
  if (device !== 'disk') return `a ${device} passes a host device through`;
  const source = element(disk, 'source');
  const file = attr(source, 'file');
  if (type !== 'file' || file === undefined || !files.has(file)) {
    return 'only the restored disk files are attached (this one names storage of the original host)';
  }
  if (attr(element(disk, 'driver'), 'type') !== 'qcow2') return 'the restored disk files are qcow2';
  const list = childrenOf(disk);
  list[list.indexOf(source as XmlNode)] = newElement('source', { file });
  keepOnly(disk, DISK_CHILDREN, `disk ${target}`, notes);
  return undefined;
}

function checkInterface(nic: XmlNode, notes: string[]): string | undefined {
  const type = attr(nic, 'type') ?? '';
  if (!NIC_TYPES.has(type)) return `a ${type || 'typeless'} interface uses a host device or socket`;
  const what = `interface ${attr(element(nic, 'mac'), 'address') ?? type}`;
  removeChildren(nic, (c) => {
    const tag = tagOf(c) ?? '';
    if (tag === 'script' || tag === 'downscript') {
      notes.push(`${what}: its ${tag} ${attr(c, 'path') ?? ''} removed (it would run as root on this host)`);
      return true;
    }
    return false;
  });
  keepOnly(nic, NIC_CHILDREN, what, notes);
  for (const backend of elements(nic, 'backend')) {
    for (const name of ['tap', 'vhost', 'logFile']) {
      const path = attr(backend, name);
      if (path === undefined) continue;
      setAttr(backend, name, undefined);
      notes.push(`${what}: backend ${name} ${path} removed (a host path)`);
    }
  }
  removeChildren(nic, (c) => tagOf(c) === 'backend' && isBare(c));
  stripRomFile(nic, what, notes);
  return undefined;
}

function checkGraphics(graphics: XmlNode, notes: string[]): string | undefined {
  const type = attr(graphics, 'type') ?? '';
  if (!['vnc', 'spice', 'egl-headless'].includes(type))
    return 'only vnc, spice and egl-headless displays are restored';
  const socket = attr(graphics, 'socket');
  if (socket !== undefined) {
    setAttr(graphics, 'socket', undefined);
    notes.push(`graphics ${type}: socket ${socket} removed (a host path)`);
  }
  removeChildren(graphics, (c) => {
    if (tagOf(c) !== 'listen' || (attr(c, 'type') !== 'socket' && attr(c, 'socket') === undefined))
      return false;
    notes.push(`graphics ${type}: socket listen ${attr(c, 'socket') ?? ''} removed (a host path)`.trim());
    return true;
  });
  for (const gl of elements(graphics, 'gl')) {
    const node = attr(gl, 'rendernode');
    if (node === undefined) continue;
    setAttr(gl, 'rendernode', undefined);
    notes.push(`graphics ${type}: render node ${node} removed (a host device)`);
  }
  return undefined;
}

function checkChannel(channel: XmlNode, notes: string[]): string | undefined {
  const type = attr(channel, 'type');
  const target = element(channel, 'target');
  const what = `channel ${attr(target, 'name') ?? type ?? ''}`.trim();
  if (type === 'spicevmc' || type === 'qemu-vdagent') {
    keepOnly(
      channel,
      new Set([...PTY_CHILDREN, ...(type === 'qemu-vdagent' ? ['source'] : [])]),
      what,
      notes,
    );
    return undefined;
  }
  if (type !== 'unix' || attr(target, 'type') !== 'virtio')
    return 'only spice, vdagent and virtio unix channels are restored (others are host files or sockets)';
  const path = attr(element(channel, 'source'), 'path');
  removeChildren(channel, (c) => tagOf(c) === 'source');
  if (path !== undefined) notes.push(`${what}: socket path ${path} removed (libvirt picks one of its own)`);
  keepOnly(channel, PTY_CHILDREN, what, notes);
  return undefined;
}

function checkRng(rng: XmlNode): string | undefined {
  const backends = elements(rng, 'backend');
  const ok =
    backends.length === 1 &&
    backends.every((b) => {
      const model = attr(b, 'model');
      return model === 'builtin' || (model === 'random' && RANDOM_SOURCES.has(textOf(b).trim()));
    });
  return ok ? undefined : 'only a builtin, /dev/urandom or /dev/random backend is restored';
}

function checkTpm(tpm: XmlNode, notes: string[]): string | undefined {
  const backends = elements(tpm, 'backend');
  if (backends.length !== 1 || attr(backends[0], 'type') !== 'emulator')
    return 'only an emulated TPM is restored (passthrough and external ones are host devices or sockets)';
  keepOnly(backends[0] as XmlNode, new Set(['active_pcr_banks', 'profile']), 'tpm backend', notes);
  return undefined;
}

/** Removes the child elements of `node` not in `allowed`, with a note each. */
function keepOnly(node: XmlNode, allowed: ReadonlySet<string>, what: string, notes: string[]): void {
  removeChildren(node, (c) => {
    const tag = tagOf(c) as string;
    if (allowed.has(tag)) return false;
    const path = hostPath(c);
    notes.push(`${what}: <${tag}>${path ? ` ${path}` : ''} removed`);
    return true;
  });
}

function stripRomFile(device: XmlNode, what: string, notes: string[]): void {
  for (const rom of elements(device, 'rom')) {
    const file = attr(rom, 'file');
    if (file === undefined) continue;
    setAttr(rom, 'file', undefined);
    notes.push(`${what}: ROM file ${file} removed (a host file)`);
  }
  removeChildren(device, (c) => tagOf(c) === 'rom' && isBare(c));
}

/** An element left with no attributes and no children: it says nothing, so it goes. */
function isBare(node: XmlNode): boolean {
  return node[':@'] === undefined && childrenOf(node).length === 0;
}

/** Text of an element and all its descendants. */
function deepText(node: XmlNode): string {
  return childrenOf(node)
    .map((c) => (typeof c['#text'] === 'string' ? c['#text'] : tagOf(c) ? deepText(c) : ''))
    .join('');
}

/** The host path or device an element names, if any (for notes). */
function hostPath(node: XmlNode | undefined): string | undefined {
  if (!node) return undefined;
  for (const name of ['file', 'dev', 'dir', 'path', 'socket', 'name', 'volume']) {
    const value = attr(node, name);
    if (value !== undefined) return value;
  }
  const source = element(node, 'source');
  if (source && source !== node) return hostPath(source);
  return undefined;
}

/** `<filesystem type='mount'> /etc` (what a note calls a dropped device). */
function label(device: XmlNode): string {
  const tag = tagOf(device) as string;
  const kind = ['type', 'device', 'model']
    .map((name) => (attr(device, name) !== undefined ? ` ${name}='${attr(device, name)}'` : ''))
    .join('');
  const target = attr(element(device, 'target'), 'dev');
  const path = tag === 'emulator' ? textOf(device).trim() : hostPath(device);
  return `<${tag}${kind}>${target ? ` ${target}` : ''}${path ? ` ${path}` : ''}`;
}
