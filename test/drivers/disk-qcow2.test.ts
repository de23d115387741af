/**
 * The qcow2 disk driver on real libvirt VMs (OS-less, idling in the firmware): the conformance
 * suite, then what is particular to file disks: overlay placement, disks left out of the
 * snapshot, persistent definitions, backing chains, lock holders, qcow2 restores, inventory.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDomainInventory, readHostInventory } from '#drivers/disk/inventory.ts';
import { Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import { run } from '#drivers/exec.ts';
import {
  blockList,
  createTestVm,
  ensureLibvirt,
  filledWith,
  guestWrite,
  readDisk,
  type TestVm,
  virsh,
} from '../helpers/libvirt.ts';
import { diskConformance } from './disk.conformance.ts';

const MiB = 1024 * 1024;
const A = 0xaa;
const B = 0xbb;
const driver = new Qcow2Driver();

const vda = (vm: TestVm) => vm.disks[0] as TestVm['disks'][number];
const taskDisk = (vm: TestVm, index = 0) => {
  const d = vm.disks[index] as TestVm['disks'][number];
  return { id: index, target: d.target, source: d.path, format: d.format, driver: 'qcow2' as const };
};
const state = async (domain: string) => (await virsh('domstate', domain)).trim();
const check = (path: string) => run({ file: 'qemu-img', args: ['check', path] });

beforeAll(ensureLibvirt);

diskConformance('qcow2', async () => ({
  driver,
  freshDriver: () => new Qcow2Driver(),
  async createVm(name, running) {
    const vm = await createTestVm({
      name,
      disks: [
        { sizeMiB: 16, format: 'qcow2' },
        { sizeMiB: 8, format: 'raw' },
      ],
      running,
    });
    return {
      domain: vm.domain,
      dir: vm.dir,
      disks: vm.disks.map((_, i) => taskDisk(vm, i)),
      destroy: vm.destroy,
    };
  },
  readVmDisk: (_vm, disk, offset, length) => readDisk(disk.source, disk.format, offset, length),
}));

describe('running VM with two disks (vdb volatile)', () => {
  let vm: TestVm;
  beforeAll(async () => {
    vm = await createTestVm({
      name: 'lb-disk-run',
      disks: [
        { sizeMiB: 64, format: 'qcow2' },
        { sizeMiB: 32, format: 'raw', volatile: true },
      ],
      running: true,
      backupConfig: { KEEP_LAST: '3' },
    });
  });
  afterAll(() => vm?.destroy());

  it('reports the VM in the inventory: disks, volatile flag, NIC, state, BACKUP_CONFIG', async () => {
    const inv = await readDomainInventory(vm.domain);
    expect(inv.state).toBe('RUNNING');
    expect(inv.disks).toEqual([
      {
        id: 0,
        target: 'vda',
        source: vda(vm).path,
        format: 'qcow2',
        size: 64 * MiB,
        allocated: (await stat(vda(vm).path)).blocks * 512,
        volatile: false,
        canIncrement: true,
      },
      {
        id: 1,
        target: 'vdb',
        source: vm.disks[1]?.path,
        format: 'raw',
        size: 32 * MiB,
        allocated: (await stat(vm.disks[1]?.path as string)).blocks * 512,
        volatile: true,
        canIncrement: false,
      },
    ]);
    // A fresh qcow2 holds its metadata only: what a full backup of it writes is far below 64 MiB.
    expect(inv.disks[0]?.allocated).toBeLessThan(MiB);
    expect(inv.nics).toHaveLength(1);
    expect(inv.nics[0]?.mac).toMatch(/^52:54:00:/);
    expect(inv.backupConfig).toEqual({ KEEP_LAST: '3' });
    expect(inv.template).toContain('<name>lb-disk-run</name>');
    const host = await readHostInventory();
    expect(host.find((v) => v.domain === vm.domain)?.disks).toEqual(inv.disks);
  });

  it('hands out the original file frozen at snapshot time, then commits the guest writes back', async () => {
    await guestWrite(vm.domain, 'vda', 0, MiB, A);
    const workDir = join(vm.dir, 'work-1');
    const prepared = await driver.prepareBackup({ id: 1, domain: vm.domain }, [taskDisk(vm)], {
      freeze: 'NONE',
      workDir,
    });
    expect(prepared.state).toBe('RUNNING');
    expect(prepared.files).toEqual([
      {
        diskId: 0,
        name: 'disk.0.qcow2',
        source: { kind: 'file', path: vda(vm).path },
        format: 'qcow2',
        virtualSize: 64 * MiB,
      },
    ]);
    expect(prepared.template).toContain(vda(vm).path);
    expect(prepared.template).not.toContain('overlay');
    // Only vda was snapshotted; the volatile vdb stays on its file.
    expect(await blockList(vm.domain)).toEqual({
      vda: join(workDir, 'overlay-vda.qcow2'),
      vdb: vm.disks[1]?.path,
    });

    await guestWrite(vm.domain, 'vda', 0, MiB, B);
    const source = await readDisk(vda(vm).path, 'qcow2', 0, MiB);
    expect(filledWith(source, A)).toBe(true);

    await prepared.release();
    await prepared.release(); // idempotent
    expect(await blockList(vm.domain)).toEqual({ vda: vda(vm).path, vdb: vm.disks[1]?.path });
    expect(await blockList(vm.domain, true)).toEqual({ vda: vda(vm).path, vdb: vm.disks[1]?.path });
    expect(existsSync(workDir)).toBe(false);
    expect(await state(vm.domain)).toBe('running');

    await virsh('destroy', vm.domain);
    expect(filledWith(await readDisk(vda(vm).path, 'qcow2', 0, MiB), B)).toBe(true);
    await expect(check(vda(vm).path)).resolves.toBeDefined();
    await virsh('start', vm.domain);
  });

  it('a paused VM is snapshotted as it is, committed back, and stays paused', async () => {
    await virsh('suspend', vm.domain);
    const workDir = join(vm.dir, 'work-paused');
    const prepared = await driver.prepareBackup({ id: 1, domain: vm.domain }, [taskDisk(vm)], {
      freeze: 'AGENT', // no agent can answer a paused guest: not asked
      workDir,
    });
    expect(prepared.state).toBe('SUSPENDED');
    expect((await blockList(vm.domain)).vda).toBe(join(workDir, 'overlay-vda.qcow2'));
    await prepared.release();
    expect((await blockList(vm.domain)).vda).toBe(vda(vm).path);
    expect(await state(vm.domain)).toBe('paused');
    await virsh('resume', vm.domain);
  });

  it('refuses a disk whose source is not what the task says', async () => {
    const wrong = { ...taskDisk(vm), source: '/var/lib/libvirt/images/other.qcow2' };
    await expect(
      driver.prepareBackup({ id: 1, domain: vm.domain }, [wrong], {
        freeze: 'NONE',
        workDir: join(vm.dir, 'w'),
      }),
    ).rejects.toMatchObject({ name: 'DiskMismatch' });
  });

  it('reconcile after a crash (record lost) commits the overlay back into the original file', async () => {
    const workDir = join(vm.dir, 'work-4');
    await driver.prepareBackup({ id: 1, domain: vm.domain }, [taskDisk(vm)], { freeze: 'NONE', workDir });
    await guestWrite(vm.domain, 'vda', MiB, MiB, A);
    // The runner died: no release(), and even the driver's record is gone.
    await rm(join(workDir, 'lifeboat-disk.json'));
    const fresh = new Qcow2Driver();
    const done = await fresh.reconcile(workDir);
    expect(done).toContain(`blockcommit ${vm.domain} vda`);
    expect(await blockList(vm.domain)).toEqual({ vda: vda(vm).path, vdb: vm.disks[1]?.path });
    expect(await blockList(vm.domain, true)).toEqual({ vda: vda(vm).path, vdb: vm.disks[1]?.path });
    expect(existsSync(workDir)).toBe(false);
    expect(await fresh.reconcile(workDir)).toEqual([]);
    await virsh('destroy', vm.domain);
    expect(filledWith(await readDisk(vda(vm).path, 'qcow2', MiB, MiB), A)).toBe(true);
    await virsh('start', vm.domain);
  });

  it('release after the VM was destroyed mid-backup keeps its writes and its definition', async () => {
    const workDir = join(vm.dir, 'work-5');
    const prepared = await driver.prepareBackup({ id: 1, domain: vm.domain }, [taskDisk(vm)], {
      freeze: 'NONE',
      workDir,
    });
    await guestWrite(vm.domain, 'vda', 2 * MiB, MiB, B);
    await virsh('destroy', vm.domain);
    expect((await blockList(vm.domain, true)).vda).toBe(join(workDir, 'overlay-vda.qcow2'));
    await prepared.release();
    expect(await blockList(vm.domain, true)).toEqual({ vda: vda(vm).path, vdb: vm.disks[1]?.path });
    expect(existsSync(workDir)).toBe(false);
    expect(filledWith(await readDisk(vda(vm).path, 'qcow2', 2 * MiB, MiB), B)).toBe(true);
    await expect(check(vda(vm).path)).resolves.toBeDefined();
    await virsh('start', vm.domain);
    expect((await blockList(vm.domain)).vda).toBe(vda(vm).path);
  });
});

describe('running VM cloned from a template image (disk with a backing file)', () => {
  const baseDir = '/var/lib/lifeboat/test-vms/lb-disk-template';
  const base = join(baseDir, 'template.qcow2');
  let vm: TestVm;
  beforeAll(async () => {
    await rm(baseDir, { recursive: true, force: true });
    await run({ file: 'mkdir', args: ['-p', baseDir] });
    await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', base, '16M'] });
    await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', `write -P ${A} 0 1M`, base] });
    vm = await createTestVm({
      name: 'lb-disk-clone',
      disks: [{ sizeMiB: 16, format: 'qcow2', backing: { path: base, format: 'qcow2' } }],
      running: true,
    });
  });
  afterAll(async () => {
    await vm?.destroy();
    await rm(baseDir, { recursive: true, force: true });
  });

  it('exports the whole chain over NBD, frozen at snapshot time', async () => {
    await guestWrite(vm.domain, 'vda', MiB, MiB, B);
    const workDir = join(vm.dir, 'work-1');
    const prepared = await driver.prepareBackup({ id: 3, domain: vm.domain }, [taskDisk(vm)], {
      freeze: 'NONE',
      workDir,
    });
    const file = prepared.files[0];
    expect(file).toMatchObject({ diskId: 0, name: 'disk.0.raw', format: 'raw', virtualSize: 16 * MiB });
    expect(file?.source).toEqual({
      kind: 'nbd',
      uri: `nbd+unix:///?socket=${join(workDir, 'lock-vda.sock')}`,
      size: 16 * MiB,
    });
    await guestWrite(vm.domain, 'vda', 0, MiB, 0xcc);
    const copy = join(vm.dir, 'copy.raw');
    if (file?.source.kind !== 'nbd') throw new Error('expected an nbd source');
    await run({ file: 'nbdcopy', args: [file.source.uri, copy] });
    expect(filledWith(await readDisk(copy, 'raw', 0, MiB), A)).toBe(true);
    expect(filledWith(await readDisk(copy, 'raw', MiB, MiB), B)).toBe(true);
    await prepared.release();
    expect((await blockList(vm.domain)).vda).toBe(vda(vm).path);
    expect(existsSync(workDir)).toBe(false);
    await virsh('destroy', vm.domain);
    expect(filledWith(await readDisk(vda(vm).path, 'qcow2', 0, MiB), 0xcc)).toBe(true);
    expect(filledWith(await readDisk(base, 'qcow2', 0, MiB), A)).toBe(true);
  });
});

describe('stopped VM', () => {
  let vm: TestVm;
  beforeAll(async () => {
    vm = await createTestVm({
      name: 'lb-disk-off',
      disks: [
        { sizeMiB: 16, format: 'raw' },
        { sizeMiB: 16, format: 'qcow2' },
      ],
      running: false,
    });
  });
  afterAll(() => vm?.destroy());

  it('hands out the files themselves and keeps the VM from starting until release', async () => {
    const workDir = join(vm.dir, 'work-1');
    const prepared = await driver.prepareBackup(
      { id: 2, domain: vm.domain },
      [taskDisk(vm), taskDisk(vm, 1)],
      {
        freeze: 'AGENT', // nothing to freeze on a stopped VM
        workDir,
      },
    );
    expect(prepared.state).toBe('POWEROFF');
    expect(prepared.files).toEqual([
      {
        diskId: 0,
        name: 'disk.0.raw',
        source: { kind: 'file', path: vda(vm).path },
        format: 'raw',
        virtualSize: 16 * MiB,
      },
      {
        diskId: 1,
        name: 'disk.1.qcow2',
        source: { kind: 'file', path: vm.disks[1]?.path },
        format: 'qcow2',
        virtualSize: 16 * MiB,
      },
    ]);
    await expect(virsh('start', vm.domain)).rejects.toThrow(/lock/);
    // Again with only the qcow2 disk: its read-only lock alone must keep the VM from starting too.
    await new Qcow2Driver().reconcile(workDir, vm.domain);
    const second = await driver.prepareBackup({ id: 2, domain: vm.domain }, [taskDisk(vm, 1)], {
      freeze: 'NONE',
      workDir,
    });
    await expect(virsh('start', vm.domain)).rejects.toThrow(/lock/);
    await second.release();
    await prepared.release();
    expect(existsSync(workDir)).toBe(false);
    await virsh('start', vm.domain);
    expect(await state(vm.domain)).toBe('running');
    await virsh('destroy', vm.domain);
  });

  it('the inventory reads a stopped VM’s disks without locking them: a writer holding one meanwhile is not refused, nor refuses it', async () => {
    // A writer holds the qcow2 disk (as a VM started in that moment would): qemu-io opens it
    // read-write and waits. Without -U the inventory's qemu-img would need a shared lock that
    // refuses writers, and fail here; in the other order, the writer would fail.
    const holder = spawn(
      'qemu-io',
      ['-f', 'qcow2', '-c', 'sleep 20000', (vm.disks[1] as TestVm['disks'][number]).path],
      {
        stdio: 'ignore',
      },
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(holder.exitCode).toBeNull();
      const inv = await readDomainInventory(vm.domain);
      expect(inv.state).toBe('POWEROFF');
      expect(inv.disks.map((d) => [d.format, d.size])).toEqual([
        ['raw', 16 * MiB],
        ['qcow2', 16 * MiB],
      ]);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
    }
  });

  it('reconcile stops a lock holder left by a crashed runner', async () => {
    const workDir = join(vm.dir, 'work-2');
    await driver.prepareBackup({ id: 2, domain: vm.domain }, [taskDisk(vm)], { freeze: 'NONE', workDir });
    expect((await readdir(workDir)).sort()).toContain('lock-vda.pid');
    const done = await new Qcow2Driver().reconcile(workDir, vm.domain);
    expect(done).toContain('stopped lock-vda');
    await virsh('start', vm.domain);
    await virsh('destroy', vm.domain);
  });
});

describe('restoreDisk', () => {
  const dir = '/var/lib/lifeboat/test-vms/lb-disk-restore';
  beforeAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await run({ file: 'mkdir', args: ['-p', dir] });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('moves a stored qcow2 file into place and refuses to overwrite an existing disk', async () => {
    const stored = join(dir, 'disk.1.qcow2');
    await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', stored, '8M'] });
    const copy = join(dir, 'disk.1.copy.qcow2');
    await copyFile(stored, copy);
    const restored = await driver.restoreDisk(stored, 'qcow2', join(dir, 'out', 'vdb.qcow2'));
    expect(restored.virtualSize).toBe(8 * MiB);
    await expect(driver.restoreDisk(copy, 'qcow2', restored.path)).rejects.toMatchObject({
      name: 'Conflict',
    });
    expect(existsSync(copy)).toBe(true);
  });
});
