/**
 * Real libvirt for integration tests: starts virtlogd and libvirtd by hand (no systemd here),
 * creates small OS-less VMs with file disks, simulates guest writes through QEMU's monitor, and
 * reads disk images back. Every VM lives under /var/lib/lifeboat/test-vms/<name>/.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDomainXml } from '#drivers/disk/domain-xml.ts';
import { run } from '#drivers/exec.ts';
import { ensureLibvirt, LIBVIRT_URI } from '#local/libvirtd.ts';

export { ensureLibvirt };

export const URI = LIBVIRT_URI;
export const TEST_VM_ROOT = '/var/lib/lifeboat/test-vms';

/** `virsh -c qemu:///system ...args`, stdout. */
export async function virsh(...args: string[]): Promise<string> {
  return (await run({ file: 'virsh', args: ['-c', URI, ...args] })).stdout;
}

/**
 * True when QEMU, running as libvirt-qemu, may open /dev/kvm (libvirt here does not give it
 * access through a private /dev): then domains use type kvm, otherwise TCG (type qemu).
 */
export async function kvmUsable(): Promise<boolean> {
  const info = await stat('/dev/kvm').catch(() => undefined);
  if (!info) return false;
  const ids = (await run({ file: 'id', args: ['libvirt-qemu'] }).catch(() => ({ stdout: '' }))).stdout;
  const uid = Number(/uid=(\d+)/.exec(ids)?.[1] ?? -1);
  const gids = [...ids.matchAll(/(\d+)\(/g)].map((m) => Number(m[1]));
  if (info.uid === uid && (info.mode & 0o600) === 0o600) return true;
  if (gids.includes(info.gid) && (info.mode & 0o060) === 0o060) return true;
  return (info.mode & 0o006) === 0o006;
}

export interface TestDiskSpec {
  sizeMiB: number;
  format: 'qcow2' | 'raw';
  volatile?: boolean;
  /** Make the disk a qcow2 overlay of this image (a VM cloned from a template). */
  backing?: { path: string; format: 'qcow2' | 'raw' };
}

export interface TestDisk {
  target: string;
  path: string;
  format: 'qcow2' | 'raw';
}

export interface TestVm {
  domain: string;
  dir: string;
  disks: TestDisk[];
  /** Destroys and undefines the domain (with checkpoint metadata) and removes its folder. */
  destroy(): Promise<void>;
}

/**
 * Removes a test domain and its folder, and stops processes a failed test left serving files of
 * it (qemu-nbd with a pid file in the folder); succeeds when they are already gone.
 */
export async function removeTestVm(name: string): Promise<void> {
  const dir = join(TEST_VM_ROOT, name);
  await virsh('destroy', name).catch(() => {});
  await virsh('undefine', name, '--checkpoints-metadata', '--snapshots-metadata').catch(() => {});
  const files = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const file of files.filter((f) => f.endsWith('.pid'))) {
    const pid = Number((await readFile(join(dir, file), 'utf8').catch(() => '')).trim());
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (pid > 1 && cmdline.includes(dir)) process.kill(pid, 'SIGTERM');
  }
  await rm(dir, { recursive: true, force: true });
}

/**
 * Defines a minimal domain with no OS (it idles in the firmware, which is all disk work needs):
 * virtio disks vda, vdb, ... with aliases `ua-<target>` (so the QOM path of each is known), a
 * user-mode NIC unless `nic: false`, and Lifeboat's metadata marking volatile disks. A leftover
 * domain of the same name is removed first.
 */
export async function createTestVm(options: {
  name: string;
  disks: TestDiskSpec[];
  running: boolean;
  nic?: boolean;
  backupConfig?: Record<string, string>;
}): Promise<TestVm> {
  await ensureLibvirt();
  await removeTestVm(options.name);
  const dir = join(TEST_VM_ROOT, options.name);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const disks: TestDisk[] = [];
  for (const [index, spec] of options.disks.entries()) {
    const target = `vd${String.fromCharCode(97 + index)}`;
    const path = join(dir, `${target}.${spec.format}`);
    const backing = spec.backing ? ['-b', spec.backing.path, '-F', spec.backing.format] : [];
    await run({
      file: 'qemu-img',
      args: ['create', '-q', '-f', spec.format, ...backing, path, `${spec.sizeMiB}M`],
    });
    disks.push({ target, path, format: spec.format });
  }
  const type = (await kvmUsable()) ? 'kvm' : 'qemu';
  const meta = [
    ...options.disks.flatMap((spec, i) =>
      spec.volatile ? [`<lifeboat:disk target="${disks[i]?.target}" volatile="yes"/>`] : [],
    ),
    ...(options.backupConfig
      ? [
          `<lifeboat:backup_config>${Object.entries(options.backupConfig)
            .map(([k, v]) => `<lifeboat:${k}>${v}</lifeboat:${k}>`)
            .join('')}</lifeboat:backup_config>`,
        ]
      : []),
  ];
  const xml = `<domain type='${type}'>
  <name>${options.name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <metadata><lifeboat:vm xmlns:lifeboat="urn:lifeboat:vm:1">${meta.join('')}</lifeboat:vm></metadata>
  <devices>
${disks
  .map(
    (d) =>
      `    <disk type='file' device='disk'><driver name='qemu' type='${d.format}'/><source file='${d.path}'/>` +
      `<target dev='${d.target}' bus='virtio'/><alias name='ua-${d.target}'/></disk>`,
  )
  .join('\n')}
${options.nic === false ? '' : "    <interface type='user'><model type='virtio'/></interface>"}
  </devices>
</domain>`;
  const xmlFile = join(dir, 'domain.xml');
  await writeFile(xmlFile, xml);
  await virsh('define', xmlFile);
  if (options.running) await virsh('start', options.name);
  return { domain: options.name, dir, disks, destroy: () => removeTestVm(options.name) };
}

/** Live sources of a domain's disks, target -> path (`virsh domblklist`). */
export async function blockList(domain: string, inactive = false): Promise<Record<string, string>> {
  const out = await virsh('domblklist', domain, ...(inactive ? ['--inactive'] : []));
  const rows = out
    .split('\n')
    .slice(2)
    .map((l) => l.trim().split(/\s+/));
  return Object.fromEntries(rows.filter((r) => r.length === 2).map(([t, s]) => [t, s]));
}

/**
 * Writes `length` bytes of `pattern` at `offset` into the disk `target` as the guest would, via
 * HMP `qemu-io` on the device's QOM path, then flushes. HMP exits 0 even on failure, and qemu-io
 * does not reliably echo its errors there: the range is checked against the disk's capacity
 * first, and any "Error"/"failed" text is raised.
 */
export async function guestWrite(
  domain: string,
  target: string,
  offset: number,
  length: number,
  pattern: number,
): Promise<void> {
  const capacity = Number(/Capacity:\s+(\d+)/.exec(await virsh('domblkinfo', domain, target))?.[1]);
  if (!(offset >= 0 && length > 0 && offset + length <= capacity)) {
    throw new Error(`guestWrite ${offset}+${length} outside ${target} (${capacity} bytes)`);
  }
  const alias = parseDomainXml(await virsh('dumpxml', domain)).disks.find((d) => d.target === target)?.alias;
  if (!alias) throw new Error(`no alias for ${target} of ${domain}`);
  const device = `/machine/peripheral/${alias}/virtio-backend`;
  const hex = `0x${pattern.toString(16).padStart(2, '0')}`;
  for (const command of [`write -P ${hex} ${offset} ${length}`, 'flush']) {
    const out = await virsh('qemu-monitor-command', domain, '--hmp', `qemu-io -d ${device} "${command}"`);
    if (/error|failed|not found/i.test(out))
      throw new Error(`qemu-io ${command} on ${domain} ${target}: ${out.trim()}`);
  }
}

/**
 * Reads `length` bytes at `offset` of a disk image as the guest sees it (qemu-img convert to a
 * raw temp file: never `-U`, so the image must not be in use for writing).
 */
export async function readDisk(
  path: string,
  format: string,
  offset: number,
  length: number,
): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-read-'));
  try {
    const raw = join(dir, 'disk.raw');
    await run({ file: 'qemu-img', args: ['convert', '-f', format, '-O', 'raw', path, raw] });
    const handle = await open(raw, 'r');
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** sha256 hex of a range of a disk image (see {@link readDisk}). */
export async function sha256Disk(
  path: string,
  format: string,
  offset: number,
  length: number,
): Promise<string> {
  return createHash('sha256')
    .update(await readDisk(path, format, offset, length))
    .digest('hex');
}

/** True when every byte of the buffer is `pattern` (and it is not empty). */
export function filledWith(buffer: Buffer, pattern: number): boolean {
  return buffer.length > 0 && buffer.every((b) => b === pattern);
}
