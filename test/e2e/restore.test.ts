/**
 * Restores done right, on real VMs through local mode, as an operator runs them: the template
 * cleaned (NO_IP, NO_NIC, PCI, NUMA, new name and UUID), the VM defined on a host (started on
 * KVM only when asked) with EMULATOR_CPUS or its pin policy, each option's errors, and an
 * in-place restore that is byte-identical and leaves no safety copy.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Host, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { readLocalCredentials } from '#local/credentials.ts';
import { localDynamoClient } from '#local/dynamodb.ts';
import { ensureLibvirt, kvmUsable, removeTestVm, TEST_VM_ROOT, virsh } from '../helpers/libvirt.ts';
import { backup, guestSha256, removeHome, type Stack, startStack } from './harness.ts';

const SOURCE = 'lb-e2e-rs-src';
const COPY = 'lb-e2e-rs-copy';
const BARE = 'lb-e2e-rs-bare';
const CLASH = 'lb-e2e-rs-clash';
const DISK_ONLY = 'lb-e2e-rs-disk';
const NAMES = [SOURCE, COPY, BARE, CLASH, DISK_ONLY];
const MAC = '52:54:00:12:34:56';

let stack: Stack;
let host: Host;
let vm: Vm;
let image: Image;
let kvm: boolean;
/** Guest-visible sha256 of vda (qcow2) and vdb (raw) at backup time. */
let atBackup: [string, string];
const srcDir = join(TEST_VM_ROOT, SOURCE);
const vda = join(srcDir, 'vda.qcow2');
const vdb = join(srcDir, 'vdb.raw');

/** A powered-off VM with everything a restore must clean: MAC and IP, PCI devices, NUMA pinning. */
function sourceXml(type: string): string {
  return `<domain type='${type}'>
  <name>${SOURCE}</name>
  <memory unit='KiB'>65536</memory>
  <vcpu placement='static' cpuset='0-1'>2</vcpu>
  <cputune><vcpupin vcpu='0' cpuset='1'/><vcpupin vcpu='1' cpuset='0'/><emulatorpin cpuset='1'/></cputune>
  <numatune><memory mode='strict' nodeset='0'/><memnode cellid='0' mode='strict' nodeset='0'/></numatune>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <cpu><topology sockets='1' dies='1' cores='2' threads='1'/><numa><cell id='0' cpus='0-1' memory='65536' unit='KiB'/></numa></cpu>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${vda}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${vdb}'/><target dev='vdb' bus='virtio'/></disk>
    <interface type='user'><mac address='${MAC}'/><ip family='ipv4' address='172.17.2.0' prefix='24'/><model type='virtio'/></interface>
    <interface type='hostdev' managed='yes'><mac address='52:54:00:6d:90:02'/><source><address type='pci' domain='0x0000' bus='0x07' slot='0x10' function='0x1'/></source></interface>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></hostdev>
  </devices>
</domain>`;
}

beforeAll(async () => {
  await ensureLibvirt();
  for (const name of NAMES) await removeTestVm(name);
  kvm = await kvmUsable();
  await mkdir(srcDir, { recursive: true, mode: 0o755 });
  await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', vda, '32M'] });
  await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'raw', vdb, '16M'] });
  await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 2M', vda] });
  await run({ file: 'qemu-io', args: ['-f', 'raw', '-c', 'write -P 0x6b 4M 1M', vdb] });
  await writeFile(join(srcDir, 'domain.xml'), sourceXml(kvm ? 'kvm' : 'qemu'));
  await virsh('define', join(srcDir, 'domain.xml'));
  atBackup = [await guestSha256(vda, 'qcow2'), await guestSha256(vdb, 'raw')];

  stack = await startStack();
  host = await stack.host();
  vm = await stack.vm(SOURCE, 'POWEROFF');
  const ds = await stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    'e2e-restore',
    '--driver',
    'restic',
    '--attr',
    `BASE_PATH=${join(stack.home, 'restic')}`,
    '--attr',
    'RESTIC_PASSWORD=e2e restore pw',
  ]);
  const out = await backup(stack, vm.id, ds.id);
  expect(out.execution).toMatchObject({ state: 'SUCCEEDED' });
  image = await stack.json<Image>(['image', 'show', String(out.execution?.imageId)]);
}, 300_000);

afterAll(async () => {
  for (const name of NAMES) await removeTestVm(name).catch(() => {});
  await stack?.stop();
  await removeHome(stack);
}, 120_000);

/** `image restore IMAGE ...args --wait --json`: exit code and the finished execution. */
async function restore(args: string[]): Promise<{ code: number; execution?: Execution; stderr: string }> {
  const out = await stack.cli(['image', 'restore', String(image.id), ...args, '--wait', '--json']);
  let execution: Execution | undefined;
  try {
    execution = JSON.parse(out.stdout) as Execution;
  } catch {
    execution = undefined;
  }
  return { code: out.code, execution, stderr: out.stderr };
}

/** The host's EMULATOR_CPUS, set as an administrator would (no API route changes it yet). */
async function setEmulatorCpus(value: string): Promise<void> {
  const { ports } = JSON.parse(await readFile(join(stack.home, 'config.json'), 'utf8'));
  const ddb = localDynamoClient(`http://127.0.0.1:${ports.dynamodb}`, await readLocalCredentials(stack.home));
  try {
    await ddb.send(
      new UpdateItemCommand({
        TableName: 'lifeboat-hosts',
        Key: { id: { N: String(host.id) } },
        UpdateExpression: 'SET emulatorCpus = :e',
        ExpressionAttributeValues: { ':e': { S: value } },
      }),
    );
  } finally {
    ddb.destroy();
  }
}

describe('restore onto a host', () => {
  it('--host --no-ip --start: a new, started KVM domain with NICs but no MAC or IP, no PCI, re-pinned', async () => {
    const dir = join(TEST_VM_ROOT, COPY);
    const out = await restore(['--host', String(host.id), '--no-ip', '--name', COPY, '--to', dir, '--start']);
    expect(out.stderr).not.toMatch(/error/i);
    expect(out.execution).toMatchObject({ kind: 'restore', state: 'SUCCEEDED' });
    expect((await virsh('domstate', COPY)).trim()).toBe('running');
    const live = await virsh('dumpxml', COPY);
    expect(live).toContain(`<domain type='${kvm ? 'kvm' : 'qemu'}'`);
    const uuid = (await virsh('domuuid', COPY)).trim();
    expect(uuid).not.toBe((await virsh('domuuid', SOURCE)).trim());
    // NO_IP: the user-mode NIC is kept, with a MAC libvirt made and no IP.
    expect(live.match(/<interface type='user'>/g)).toHaveLength(1);
    expect(live).not.toContain(MAC);
    expect(live).not.toContain('172.17.2.0');
    // PCI devices had host addresses of the backed-up host: left out, and said so.
    expect(live).not.toContain('<hostdev');
    expect(live).not.toContain("<interface type='hostdev'");
    const result = out.execution?.params.result as { notes?: string[] } | undefined;
    const notes = result?.notes ?? [];
    expect(notes.join('\n')).toMatch(/PCI hostdev 0000:06:02\.0/);
    expect(notes.join('\n')).toMatch(/PCI interface 0000:07:10\.1/);
    // NUMA: host node ids gone, guest cell kept; the pin policy re-applied here, emulator following it.
    expect(live).not.toContain('numatune');
    expect(live).toContain("<cell id='0' cpus='0-1'");
    expect(live).toContain("<vcpupin vcpu='0' cpuset='0'/>");
    expect(live).toContain("<vcpupin vcpu='1' cpuset='1'/>");
    expect(live).toContain("<emulatorpin cpuset='0-1'/>");
    // Its disks are the restored files, with the bytes of backup time.
    const disks = [join(dir, `${COPY}-disk-0.qcow2`), join(dir, `${COPY}-disk-1.qcow2`)];
    for (const disk of disks) expect(live).toContain(`<source file='${disk}'`);
    await virsh('destroy', COPY);
    expect(await guestSha256(disks[0] as string, 'qcow2')).toBe(atBackup[0]);
    expect(await guestSha256(disks[1] as string, 'qcow2')).toBe(atBackup[1]);
    const template = await readFile(join(dir, `${COPY}.xml`), 'utf8');
    expect(template).toContain('<lifeboat:pci device="hostdev" address="0000:06:02.0">');
    expect(template).not.toContain(vda);
  });

  it('EMULATOR_CPUS of the host pins the emulator; --no-nic drops every NIC; not started without --start', async () => {
    await setEmulatorCpus('1');
    const dir = join(TEST_VM_ROOT, BARE);
    const out = await restore(['--host', String(host.id), '--no-nic', '--name', BARE, '--to', dir]);
    expect(out.execution).toMatchObject({ state: 'SUCCEEDED' });
    expect((await virsh('domstate', BARE)).trim()).toBe('shut off');
    const xml = await virsh('dumpxml', '--inactive', BARE);
    expect(xml).toContain("<emulatorpin cpuset='1'/>");
    expect(xml).not.toContain('<interface');
    expect(xml).not.toContain('<hostdev');
    // It starts on this host as defined.
    await virsh('start', BARE);
    expect((await virsh('domstate', BARE)).trim()).toBe('running');
    await virsh('destroy', BARE);
  });

  it('a name a domain already has is refused before anything is written', async () => {
    const dir = join(TEST_VM_ROOT, CLASH);
    const out = await restore(['--host', String(host.id), '--name', COPY, '--to', dir]);
    expect(out.code).toBe(1);
    expect(out.execution).toMatchObject({ state: 'FAILED', error: { name: 'Conflict' } });
    expect(out.execution?.error?.message).toMatch(`a domain named "${COPY}" already exists on this host`);
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });
});

describe('restore options and their errors', () => {
  it('--disk N restores that disk only, with no template', async () => {
    const dir = join(TEST_VM_ROOT, DISK_ONLY);
    const out = await restore(['--disk', '1', '--name', DISK_ONLY, '--to', dir]);
    expect(out.execution).toMatchObject({ state: 'SUCCEEDED' });
    expect(await readdir(dir)).toEqual([`${DISK_ONLY}-disk-1.qcow2`]);
    expect(await guestSha256(join(dir, `${DISK_ONLY}-disk-1.qcow2`), 'qcow2')).toBe(atBackup[1]);
  });

  it.each([
    [['--disk', '5'], /disk 5 is not part of the backup/],
    [['--disk', '1', '--start'], /cannot restore a VM from a single-disk backup/],
    [['--in-place'], /add --yes-overwrite to confirm/],
    [['--name', 'no/slash'], /name: must be letters, digits/],
  ])('%j exits 2 with one clear line and queues nothing', async (args, message) => {
    const before = (await stack.api<{ items: Execution[] }>('GET', '/executions')).items.length;
    const out = await stack.cli(['image', 'restore', String(image.id), ...args]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(message);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect((await stack.api<{ items: Execution[] }>('GET', '/executions')).items.length).toBe(before);
  });
});

describe('in-place restore', () => {
  it('overwrites the powered-off VM disks with the backup, byte-identical, and removes the safety copies', async () => {
    // Changed after the backup: the restore must undo it.
    await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'write -P 0x77 1M 1M', vda] });
    await run({ file: 'qemu-io', args: ['-f', 'raw', '-c', 'write -P 0x78 0 1M', vdb] });
    expect(await guestSha256(vda, 'qcow2')).not.toBe(atBackup[0]);
    const out = await restore(['--in-place', '--yes-overwrite']);
    expect(out.execution).toMatchObject({ kind: 'restore', state: 'SUCCEEDED' });
    expect(await guestSha256(vda, 'qcow2')).toBe(atBackup[0]);
    expect(await guestSha256(vdb, 'raw')).toBe(atBackup[1]);
    // Each disk keeps its format; no safety copy or scratch file is left beside it.
    const info = JSON.parse((await run({ file: 'qemu-img', args: ['info', '--output=json', vdb] })).stdout);
    expect(info.format).toBe('raw');
    expect((await readdir(srcDir)).sort()).toEqual(['domain.xml', 'vda.qcow2', 'vdb.raw']);
    const after = await stack.json<Vm>(['vm', 'show', String(vm.id)]);
    expect(after.lock).toBeUndefined();
    // The VM is the one it was: same name and UUID, still defined on these files.
    expect(await virsh('domblklist', SOURCE, '--inactive')).toContain(vda);
  });

  it('refuses a running VM (409; the CLI exits 2, as for every refused request) and leaves its disks alone', async () => {
    await virsh('start', SOURCE).catch(async () => {
      // PCI devices with addresses of no real device cannot start here: drop them for this check.
      const xml = (await virsh('dumpxml', '--inactive', SOURCE))
        .replace(/<hostdev[\s\S]*?<\/hostdev>/g, '')
        .replace(/<interface type='hostdev'[\s\S]*?<\/interface>/g, '');
      await writeFile(join(srcDir, 'domain.xml'), xml);
      await virsh('define', join(srcDir, 'domain.xml'));
      await virsh('start', SOURCE);
    });
    await stack.vm(SOURCE, 'RUNNING');
    const out = await stack.cli(['image', 'restore', String(image.id), '--in-place', '--yes-overwrite']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/is RUNNING: an in-place restore needs it POWEROFF/);
    await expect(
      stack.api('POST', `/images/${image.id}/restore`, { inPlace: true, confirmOverwrite: true }),
    ).rejects.toThrow(/: 409 .*"error":"Conflict"/);
    await virsh('destroy', SOURCE);
    expect((await readdir(srcDir)).sort()).toEqual(['domain.xml', 'vda.qcow2', 'vdb.raw']);
  });

  it('--start starts the VM once its disks are back (its PCI devices dropped by the test above)', async () => {
    await stack.vm(SOURCE, 'POWEROFF');
    await run({ file: 'qemu-io', args: ['-f', 'raw', '-c', 'write -P 0x79 0 1M', vdb] });
    const out = await restore(['--in-place', '--yes-overwrite', '--start']);
    expect(out.execution).toMatchObject({ state: 'SUCCEEDED' });
    expect((await virsh('domstate', SOURCE)).trim()).toBe('running');
    await virsh('destroy', SOURCE);
    expect(await guestSha256(vdb, 'raw')).toBe(atBackup[1]);
    expect((await readdir(srcDir)).sort()).toEqual(['domain.xml', 'vda.qcow2', 'vdb.raw']);
  });
});
