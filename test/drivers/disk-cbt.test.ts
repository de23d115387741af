/**
 * Changed-block tracking of the qcow2 driver on a real (OS-less) VM: a chain started on the
 * running VM, increments while running, across a restart and while powered off, each restored
 * point compared with a model of what the guest wrote; and a broken chain refused.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreparedBackup } from '#drivers/disk/driver.ts';
import { Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import { run } from '#drivers/exec.ts';
import { createTestVm, readDisk, type TestVm, virsh } from '../helpers/libvirt.ts';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const driver = new Qcow2Driver();

describe('qcow2 changed-block tracking', () => {
  let vm: TestVm;
  let out: string;
  const model = Buffer.alloc(SIZE);
  const points: string[] = []; // sha256 of the model at each chain point
  const chain: { path: string; format: 'qcow2' | 'raw' }[] = [];
  const disk = () => {
    const d = vm.disks[0] as TestVm['disks'][number];
    return { id: 0, target: d.target, source: d.path, format: d.format, driver: 'qcow2' as const };
  };
  const write = async (offset: number, length: number, pattern: number) => {
    const hex = `0x${pattern.toString(16)}`;
    const running = (await virsh('domstate', vm.domain)).trim() === 'running';
    if (running) {
      const device = '/machine/peripheral/ua-vda/virtio-backend';
      for (const c of [`write -P ${hex} ${offset} ${length}`, 'flush']) {
        const text = await virsh('qemu-monitor-command', vm.domain, '--hmp', `qemu-io -d ${device} "${c}"`);
        expect(text).not.toMatch(/error|failed/i);
      }
    } else {
      // Powered off: written through QEMU's block layer, which keeps the persistent bitmaps.
      const c = `write -P ${hex} ${offset} ${length}`;
      await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', c, disk().source] });
    }
    model.fill(pattern, offset, offset + length);
  };
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const backup = (workDir: string, checkpoint: string, parent: string | null) =>
    driver.prepareBackup({ id: 1, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, workDir),
      increment: { checkpoint, parent },
    });
  /** Keeps an increment file as the datastore would, then releases the backup. */
  const keep = async (prepared: PreparedBackup, name: string) => {
    const file = prepared.files[0];
    if (file?.source.kind !== 'file') throw new Error('increment is not a file');
    const path = join(out, name);
    await run({ file: 'cp', args: ['--sparse=always', file.source.path, path] });
    await prepared.release();
    expect(existsSync(file.source.path)).toBe(false);
    chain.push({ path, format: 'qcow2' });
    points.push(sha(model));
    return path;
  };
  const restoredSha = async (upTo: number, name: string) => {
    const restored = await driver.restoreChain(chain.slice(0, upTo + 1), join(out, name));
    return sha(await readDisk(restored.path, 'qcow2', 0, SIZE));
  };

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lifeboat-cbt-'));
    vm = await createTestVm({
      name: 'lb-disk-cbt',
      disks: [{ sizeMiB: 64, format: 'qcow2' }],
      running: true,
    });
  });
  afterAll(async () => {
    await vm?.destroy();
    await rm(out, { recursive: true, force: true });
  });

  it('starts a chain on a running VM: a FULL streamed over NBD and a checkpoint at that point', async () => {
    await write(0, 4 * MiB, 0xa1);
    const prepared = await backup('w0', 'lifeboat-c1-0', null);
    expect(prepared.state).toBe('RUNNING');
    const file = prepared.files[0];
    expect(file).toMatchObject({ diskId: 0, name: 'disk.0.raw', format: 'raw', virtualSize: SIZE });
    if (file?.source.kind !== 'nbd') throw new Error('chain start is not an nbd source');
    const snapshot = sha(model);
    await write(MiB, MiB, 0xee); // after the point in time: must not leak into the FULL
    const full = join(out, 'full.raw');
    await run({ file: 'nbdcopy', args: [file.source.uri, full] });
    await prepared.release();
    await prepared.release();
    model.fill(0xa1, MiB, 2 * MiB); // the model of the FULL ...
    expect(sha(await readDisk(full, 'raw', 0, SIZE))).toBe(snapshot);
    model.fill(0xee, MiB, 2 * MiB); // ... and of the disk now
    chain.push({ path: full, format: 'raw' });
    points.push(snapshot);
    expect(await virsh('checkpoint-list', vm.domain, '--name')).toContain('lifeboat-c1-0');
    expect(existsSync(join(vm.dir, 'w0'))).toBe(false);
  });

  it('increment 1 holds only the changed blocks, as a qcow2 with no backing file', async () => {
    await write(8 * MiB, 2 * MiB, 0xb1);
    await write(20 * MiB, MiB, 0xb2);
    const prepared = await backup('w1', 'lifeboat-c1-1', 'lifeboat-c1-0');
    expect(prepared.files[0]).toMatchObject({
      name: 'disk.0.inc1.qcow2',
      format: 'qcow2',
      virtualSize: SIZE,
    });
    const path = await keep(prepared, 'inc1.qcow2');
    // Changed since the checkpoint: 1 MiB (0xee) + 2 MiB + 1 MiB.
    const { size } = await stat(path);
    expect(size).toBeGreaterThanOrEqual(4 * MiB);
    expect(size).toBeLessThanOrEqual(2 * 4 * MiB + MiB);
    const info = JSON.parse((await run({ file: 'qemu-img', args: ['info', '--output=json', path] })).stdout);
    expect(info.format).toBe('qcow2');
    expect(info['backing-filename']).toBeUndefined();
  });

  it('increment 2 follows increment 1 across a VM restart (checkpoints survive)', async () => {
    await write(9 * MiB, MiB, 0xc1);
    await virsh('destroy', vm.domain);
    await virsh('start', vm.domain);
    await write(40 * MiB, MiB / 2, 0xc2);
    const path = await keep(await backup('w2', 'lifeboat-c1-2', 'lifeboat-c1-1'), 'inc2.qcow2');
    expect((await stat(path)).size).toBeLessThanOrEqual(2 * 1.5 * MiB + MiB);
    // Only the parent and the new checkpoint are kept: older ones would cost a bitmap per write.
    expect((await virsh('checkpoint-list', vm.domain, '--name')).split('\n').filter(Boolean).sort()).toEqual([
      'lifeboat-c1-1',
      'lifeboat-c1-2',
    ]);
  });

  it('increment 3 of the powered-off VM, then increment 4 running again from that checkpoint', async () => {
    await virsh('destroy', vm.domain);
    await write(30 * MiB, MiB, 0xd1);
    const prepared = await backup('w3', 'lifeboat-c1-3', 'lifeboat-c1-2');
    expect(prepared.state).toBe('POWEROFF');
    expect(prepared.files[0]?.name).toBe('disk.0.inc3.qcow2');
    const path = await keep(prepared, 'inc3.qcow2');
    expect((await stat(path)).size).toBeLessThanOrEqual(3 * MiB);
    await virsh('start', vm.domain);
    await write(50 * MiB, MiB, 0xd2);
    await keep(await backup('w4', 'lifeboat-c1-4', 'lifeboat-c1-3'), 'inc4.qcow2');
  });

  it('restores every point of the chain exactly as the disk was at that point', async () => {
    expect(chain).toHaveLength(5);
    expect(await restoredSha(0, 'r0.qcow2')).toBe(points[0]);
    expect(await restoredSha(1, 'r1.qcow2')).toBe(points[1]);
    expect(await restoredSha(2, 'r2.qcow2')).toBe(points[2]);
    expect(await restoredSha(4, 'r4.qcow2')).toBe(points[4]);
    expect(new Set(points).size).toBe(5);
    await expect(driver.restoreChain(chain, join(out, 'r4.qcow2'))).rejects.toMatchObject({
      name: 'Conflict',
    });
  });

  it('a deleted checkpoint breaks the chain: ChainBroken, nothing left behind', async () => {
    await virsh('checkpoint-delete', vm.domain, 'lifeboat-c1-4');
    await expect(backup('w5', 'lifeboat-c1-5', 'lifeboat-c1-4')).rejects.toMatchObject({
      name: 'ChainBroken',
      message: expect.stringContaining('lifeboat-c1-4'),
    });
    expect(existsSync(join(vm.dir, 'w5'))).toBe(false);
    expect(await virsh('checkpoint-list', vm.domain, '--name')).not.toContain('lifeboat-c1-5');
    expect((await virsh('domstate', vm.domain)).trim()).toBe('running');
  });
});

describe('qcow2 chains: powered-off chain start, disk replaced, crash mid-job', () => {
  let vm: TestVm;
  let out: string;
  const disk = () => {
    const d = vm.disks[0] as TestVm['disks'][number];
    return { id: 0, target: d.target, source: d.path, format: d.format, driver: 'qcow2' as const };
  };
  const backup = (workDir: string, checkpoint: string, parent: string | null) =>
    driver.prepareBackup({ id: 2, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, workDir),
      increment: { checkpoint, parent },
    });
  const offlineWrite = (offset: number, length: number, pattern: number) =>
    run({
      file: 'qemu-io',
      args: ['-f', 'qcow2', '-c', `write -P ${pattern} ${offset} ${length}`, disk().source],
    });

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lifeboat-cbt2-'));
    vm = await createTestVm({
      name: 'lb-disk-cbt2',
      disks: [{ sizeMiB: 16, format: 'qcow2' }],
      running: false,
    });
  });
  afterAll(async () => {
    await vm?.destroy();
    await rm(out, { recursive: true, force: true });
  });

  it('a stopped VM starts a chain on its locked file; its increment restores exactly', async () => {
    await offlineWrite(0, MiB, 0x21);
    const full = await driver.prepareBackup({ id: 2, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, 'o0'),
      increment: { checkpoint: 'lifeboat-c2-0', parent: null },
    });
    expect(full.files[0]).toMatchObject({
      name: 'disk.0.qcow2',
      source: { kind: 'file', path: disk().source },
    });
    await expect(virsh('start', vm.domain)).rejects.toThrow(); // locked while the datastore reads
    await run({ file: 'cp', args: [disk().source, join(out, 'full.qcow2')] });
    await full.release();
    expect(await virsh('checkpoint-list', vm.domain, '--name')).toContain('lifeboat-c2-0');
    await offlineWrite(4 * MiB, MiB, 0x22);
    const inc = await backup('o1', 'lifeboat-c2-1', 'lifeboat-c2-0');
    const file = inc.files[0];
    if (file?.source.kind !== 'file') throw new Error('increment is not a file');
    expect(file.name).toBe('disk.0.inc1.qcow2');
    await run({ file: 'cp', args: [file.source.path, join(out, 'inc1.qcow2')] });
    await inc.release();
    const restored = await driver.restoreChain(
      [
        { path: join(out, 'full.qcow2'), format: 'qcow2' },
        { path: join(out, 'inc1.qcow2'), format: 'qcow2' },
      ],
      join(out, 'restored.qcow2'),
    );
    const original = await readDisk(disk().source, 'qcow2', 0, 16 * MiB);
    expect((await readDisk(restored.path, 'qcow2', 0, 16 * MiB)).equals(original)).toBe(true);
    expect(original[4 * MiB]).toBe(0x22);
  });

  it('a disk file replaced since the checkpoint is a broken chain, offline and running', async () => {
    await rm(disk().source);
    await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', disk().source, '16M'] });
    await expect(backup('o2', 'lifeboat-c2-2', 'lifeboat-c2-1')).rejects.toMatchObject({
      name: 'ChainBroken',
      message: expect.stringContaining('no bitmap'),
    });
    await virsh('start', vm.domain);
    await expect(backup('o3', 'lifeboat-c2-2', 'lifeboat-c2-1')).rejects.toMatchObject({
      name: 'ChainBroken',
    });
    expect(await virsh('checkpoint-list', vm.domain, '--name')).not.toContain('lifeboat-c2-2');
    expect(existsSync(join(vm.dir, 'o3'))).toBe(false);
  });

  it('reconcile after a crash mid-job ends the job and drops the checkpoint it made', async () => {
    for (const name of (await virsh('checkpoint-list', vm.domain, '--name')).split('\n').filter(Boolean)) {
      await virsh('checkpoint-delete', vm.domain, name.trim(), '--metadata');
    }
    const workDir = join(vm.dir, 'crash');
    await backup('crash', 'lifeboat-c3-0', null); // the runner dies: no release()
    expect(await virsh('domjobinfo', vm.domain)).toMatch(/Operation:\s+Backup/);
    const done = await new Qcow2Driver().reconcile(workDir);
    expect(done).toEqual(
      expect.arrayContaining([`domjobabort ${vm.domain}`, 'removed checkpoint lifeboat-c3-0']),
    );
    expect(await virsh('domjobinfo', vm.domain)).not.toMatch(/Operation:\s+Backup/);
    expect(await virsh('checkpoint-list', vm.domain, '--name')).not.toContain('lifeboat-c3-0');
    expect(existsSync(workDir)).toBe(false);
    // The next attempt of the chain start works again.
    const again = await backup('crash', 'lifeboat-c3-0', null);
    await again.release();
    expect(await virsh('checkpoint-list', vm.domain, '--name')).toContain('lifeboat-c3-0');
  });
});

describe('qcow2 chain start for a datastore that reads files only', () => {
  let vm: TestVm;
  let out: string;
  const disk = () => {
    const d = vm.disks[0] as TestVm['disks'][number];
    return { id: 0, target: d.target, source: d.path, format: d.format, driver: 'qcow2' as const };
  };
  const hmpWrite = async (offset: number, length: number, pattern: number) => {
    const device = '/machine/peripheral/ua-vda/virtio-backend';
    for (const c of [`write -P ${pattern} ${offset} ${length}`, 'flush']) {
      const text = await virsh('qemu-monitor-command', vm.domain, '--hmp', `qemu-io -d ${device} "${c}"`);
      expect(text).not.toMatch(/error|failed/i);
    }
  };

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lifeboat-cbt3-'));
    vm = await createTestVm({
      name: 'lb-disk-cbt3',
      disks: [{ sizeMiB: 16, format: 'qcow2' }],
      running: true,
    });
  });
  afterAll(async () => {
    await vm?.destroy();
    await rm(out, { recursive: true, force: true });
  });

  it('hands out a snapshot file; writes made during the backup are in the next increment', async () => {
    await hmpWrite(0, MiB, 0x31);
    const full = await driver.prepareBackup({ id: 3, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, 'f0'),
      fileSources: true,
      increment: { checkpoint: 'lifeboat-c3-0', parent: null },
    });
    const file = full.files[0];
    if (file?.source.kind !== 'file') throw new Error('chain start for files is not a file source');
    await run({
      file: 'qemu-img',
      args: ['convert', '-f', 'qcow2', '-O', 'qcow2', file.source.path, join(out, 'full.qcow2')],
    });
    // Written while the datastore reads the snapshot: not in the FULL, so the increment must have it.
    await hmpWrite(4 * MiB, MiB, 0x32);
    await full.release();
    expect(await virsh('checkpoint-list', vm.domain, '--name')).toContain('lifeboat-c3-0');
    await hmpWrite(8 * MiB, MiB, 0x33);
    const inc = await driver.prepareBackup({ id: 3, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, 'f1'),
      fileSources: true,
      increment: { checkpoint: 'lifeboat-c3-1', parent: 'lifeboat-c3-0' },
    });
    const incFile = inc.files[0];
    if (incFile?.source.kind !== 'file') throw new Error('increment is not a file');
    await run({ file: 'cp', args: [incFile.source.path, join(out, 'inc1.qcow2')] });
    await inc.release();
    await virsh('destroy', vm.domain);
    const restored = await driver.restoreChain(
      [
        { path: join(out, 'full.qcow2'), format: 'qcow2' },
        { path: join(out, 'inc1.qcow2'), format: 'qcow2' },
      ],
      join(out, 'restored.qcow2'),
    );
    const original = await readDisk(disk().source, 'qcow2', 0, 16 * MiB);
    expect(original[4 * MiB]).toBe(0x32);
    expect(original[8 * MiB]).toBe(0x33);
    expect((await readDisk(restored.path, 'qcow2', 0, 16 * MiB)).equals(original)).toBe(true);
  });
});
