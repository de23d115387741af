/**
 * INCREMENT_MODE=SNAPSHOT of the qcow2 driver on a real (OS-less) VM: a chain of tracking
 * overlays started on the running VM, increments while running, across a restart and while
 * powered off, each restored point compared with a model of what the guest wrote; a wrong parent
 * refused; a crash mid-increment reconciled with no write lost; a plain FULL after the chain.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreparedBackup } from '#drivers/disk/driver.ts';
import { readDomainInventory } from '#drivers/disk/inventory.ts';
import { Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import { markReleased } from '#drivers/disk/snapshot-mode.ts';
import { run } from '#drivers/exec.ts';
import { blockList, createTestVm, guestWrite, readDisk, type TestVm, virsh } from '../helpers/libvirt.ts';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const driver = new Qcow2Driver();

describe('qcow2 INCREMENT_MODE=SNAPSHOT', () => {
  let vm: TestVm;
  let out: string;
  const model = Buffer.alloc(SIZE);
  const points: string[] = []; // sha256 of the model at each chain point
  const chain: { path: string; format: 'qcow2' | 'raw' }[] = [];
  const base = () => vm.disks[0]?.path as string;
  const overlay = (n: number) => `${base()}.lifeboat-s-${n}.qcow2`;
  const disk = () => ({
    id: 0,
    target: 'vda',
    source: base(),
    format: 'qcow2' as const,
    driver: 'qcow2' as const,
  });
  const running = async () => (await virsh('domstate', vm.domain)).trim() === 'running';
  const write = async (offset: number, length: number, pattern: number) => {
    if (await running()) await guestWrite(vm.domain, 'vda', offset, length, pattern);
    else {
      // Powered off: written into whatever the domain's disk is now (the top of its chain).
      const top = (await blockList(vm.domain, true)).vda as string;
      await run({
        file: 'qemu-io',
        args: ['-f', 'qcow2', '-c', `write -P ${pattern} ${offset} ${length}`, top],
      });
    }
    model.fill(pattern, offset, offset + length);
  };
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const backup = (
    workDir: string,
    n: number,
    parent: number | null,
    mode: 'SNAPSHOT' | undefined = 'SNAPSHOT',
  ) =>
    driver.prepareBackup({ id: 1, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, workDir),
      increment: {
        checkpoint: `lifeboat-s-${n}`,
        parent: parent === null ? null : `lifeboat-s-${parent}`,
        index: n,
        ...(mode ? { mode } : {}),
      },
    });
  /** Copies the handed-out file as the datastore would, then releases the backup. */
  const keep = async (prepared: PreparedBackup, name: string, format: 'qcow2' | 'raw' = 'qcow2') => {
    const file = prepared.files[0];
    if (file?.source.kind !== 'file') throw new Error('not a file source');
    const path = join(out, name);
    await run({ file: 'cp', args: ['--sparse=always', file.source.path, path] });
    await prepared.release();
    await prepared.release();
    chain.push({ path, format });
    points.push(sha(model));
    return path;
  };
  /** The domain's live (or, when off, persistent) chain of vda, top first. */
  const vdaChain = async () => {
    const top = (await blockList(vm.domain, !(await running()))).vda as string;
    const info = JSON.parse(
      (await run({ file: 'qemu-img', args: ['info', '--output=json', '--backing-chain', '-U', top] })).stdout,
    ) as { filename: string }[];
    return info.map((i) => i.filename);
  };
  const leftovers = async () => (await readdir(vm.dir)).filter((n) => n.includes('.lifeboat-')).sort();

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lifeboat-snap-'));
    vm = await createTestVm({
      name: 'lb-disk-snap',
      disks: [{ sizeMiB: 64, format: 'qcow2' }],
      running: true,
    });
  });
  afterAll(async () => {
    await vm?.destroy();
    await rm(out, { recursive: true, force: true });
  });

  it('starts a chain on the running VM: the base is the FULL, the VM keeps writing into a tracking overlay', async () => {
    await write(0, 4 * MiB, 0xa1);
    const prepared = await backup('w0', 0, null);
    expect(prepared.state).toBe('RUNNING');
    expect(prepared.files[0]).toMatchObject({
      name: 'disk.0.qcow2',
      format: 'qcow2',
      source: { kind: 'file', path: base() },
      virtualSize: SIZE,
    });
    const atPoint = sha(model);
    await write(MiB, MiB, 0xee); // after the point in time: must not leak into the FULL
    const full = join(out, 'full.qcow2');
    await run({ file: 'qemu-img', args: ['convert', '-f', 'qcow2', '-O', 'qcow2', base(), full] });
    await prepared.release();
    chain.push({ path: full, format: 'qcow2' });
    points.push(atPoint);
    expect(sha(await readDisk(full, 'qcow2', 0, SIZE))).toBe(atPoint);
    expect(await vdaChain()).toEqual([overlay(0), base()]);
    expect((await blockList(vm.domain, true)).vda).toBe(overlay(0)); // survives a restart
    expect(existsSync(join(vm.dir, 'w0'))).toBe(false);
  });

  it('the inventory reports the base file, not the tracking overlay', async () => {
    const inventory = await readDomainInventory(vm.domain);
    expect(inventory.disks[0]).toMatchObject({ source: base(), format: 'qcow2', size: SIZE });
    expect(inventory.template).toContain(`'${base()}'`);
    expect(inventory.template).not.toContain('lifeboat-s-0');
  });

  it('increment 1 is the parent overlay: only the writes since the chain start', async () => {
    await write(8 * MiB, 2 * MiB, 0xb1);
    await write(20 * MiB, MiB, 0xb2);
    const prepared = await backup('w1', 1, 0);
    expect(prepared.files[0]).toMatchObject({
      name: 'disk.0.inc1.qcow2',
      format: 'qcow2',
      virtualSize: SIZE,
    });
    expect(prepared.template).toContain(`'${base()}'`);
    const atPoint = sha(model);
    await write(30 * MiB, MiB, 0xb3); // after the point in time: belongs to increment 2
    const path = await keep(prepared, 'inc1.qcow2');
    points[points.length - 1] = atPoint;
    // Changed since the chain start: 1 MiB (0xee) + 2 MiB + 1 MiB.
    const { size } = await stat(path);
    expect(size).toBeGreaterThanOrEqual(4 * MiB);
    expect(size).toBeLessThanOrEqual(6 * MiB);
    expect(await vdaChain()).toEqual([overlay(1), base()]);
    expect(existsSync(overlay(0))).toBe(false);
  });

  it('increment 2 follows increment 1 across a VM restart', async () => {
    await write(9 * MiB, MiB, 0xc1);
    await virsh('destroy', vm.domain);
    await virsh('start', vm.domain);
    await write(40 * MiB, MiB / 2, 0xc2);
    const path = await keep(await backup('w2', 2, 1), 'inc2.qcow2');
    expect((await stat(path)).size).toBeLessThanOrEqual(4 * MiB);
    expect(await vdaChain()).toEqual([overlay(2), base()]);
  });

  it('increment 3 of the powered-off VM, then it starts on the new overlay', async () => {
    await virsh('destroy', vm.domain);
    await write(50 * MiB, MiB, 0xd1);
    const prepared = await backup('w3', 3, 2);
    expect(prepared.state).toBe('POWEROFF');
    expect(prepared.files[0]?.name).toBe('disk.0.inc3.qcow2');
    await keep(prepared, 'inc3.qcow2');
    expect(await vdaChain()).toEqual([overlay(3), base()]);
    await virsh('start', vm.domain);
    expect(await vdaChain()).toEqual([overlay(3), base()]);
    expect(await leftovers()).toEqual(['vda.qcow2.lifeboat-s-3.qcow2']);
  });

  it('restores every point of the chain exactly as the disk was at that point', async () => {
    expect(chain).toHaveLength(4);
    for (const [i, expected] of points.entries()) {
      const restored = await driver.restoreChain(chain.slice(0, i + 1), join(out, `r${i}.qcow2`));
      expect(sha(await readDisk(restored.path, 'qcow2', 0, SIZE))).toBe(expected);
    }
    expect(new Set(points).size).toBe(4);
  });

  it('a wrong parent is a broken chain and changes nothing', async () => {
    await expect(backup('w9', 9, 2)).rejects.toMatchObject({
      name: 'ChainBroken',
      message: expect.stringContaining('lifeboat-s-2'),
    });
    expect(await vdaChain()).toEqual([overlay(3), base()]);
    expect(await leftovers()).toEqual(['vda.qcow2.lifeboat-s-3.qcow2']);
    expect(existsSync(join(vm.dir, 'w9'))).toBe(false);
  });

  it('a failed upload undoes the new overlay: the same increment can be tried again', async () => {
    const prepared = await backup('w4', 4, 3);
    expect(await vdaChain()).toEqual([overlay(4), overlay(3), base()]);
    await write(14 * MiB, MiB, 0xe0);
    await prepared.release({ failed: true });
    expect(await vdaChain()).toEqual([overlay(3), base()]);
    expect(await leftovers()).toEqual(['vda.qcow2.lifeboat-s-3.qcow2']);
    expect(existsSync(join(vm.dir, 'w4'))).toBe(false);
  });

  it('reconcile after a crash mid-increment puts the VM back on its parent overlay, no write lost', async () => {
    const workDir = join(vm.dir, 'crash');
    await backup('crash', 4, 3); // the runner dies: no release()
    expect(await vdaChain()).toEqual([overlay(4), overlay(3), base()]);
    await write(12 * MiB, MiB, 0xe1); // lands in the new overlay only
    const done = await new Qcow2Driver().reconcile(workDir);
    expect(done).toEqual(expect.arrayContaining([`removed ${overlay(4)}`]));
    expect(await vdaChain()).toEqual([overlay(3), base()]);
    expect(existsSync(workDir)).toBe(false);
    // The redelivered task now works, and its increment has the write made during the crash.
    const again = await backup('crash', 4, 3);
    const inc = again.files[0];
    if (inc?.source.kind !== 'file') throw new Error('not a file');
    expect(inc.source.path).toBe(overlay(3));
    await again.release();
    expect(await vdaChain()).toEqual([overlay(4), base()]);
  });

  it('reconcile after a crash mid-release redoes the commit of the parent overlay', async () => {
    await write(16 * MiB, 4 * MiB, 0xf1);
    const workDir = join(vm.dir, 'mid');
    await backup('mid', 5, 4);
    await markReleased(workDir); // release() began: the datastore has the increment ...
    // ... and died during a slow commit (1 MiB/s), leaving QEMU's job behind.
    await virsh('blockcommit', vm.domain, 'vda', '--base', base(), '--top', overlay(4), '--bandwidth', '1');
    expect(await virsh('blockjob', vm.domain, 'vda', '--info', '--raw')).toMatch(/type=Block Commit/);
    await write(24 * MiB, MiB, 0xf2);
    const done = await new Qcow2Driver().reconcile(workDir);
    expect(done).toEqual(
      expect.arrayContaining([
        `aborted the block job left on ${vm.domain} vda`,
        `committed ${overlay(4)} into ${base()}`,
        `removed ${overlay(4)}`,
      ]),
    );
    expect(await vdaChain()).toEqual([overlay(5), base()]);
    expect(existsSync(workDir)).toBe(false);
  });

  it('reconcile after a crash mid-chain-start puts the VM back on its base, no write lost', async () => {
    await backup('start', 6, null); // commits overlay 5 back first, then the runner dies
    expect(await vdaChain()).toEqual([overlay(6), base()]);
    expect(await leftovers()).toEqual(['vda.qcow2.lifeboat-s-6.qcow2']);
    await write(28 * MiB, MiB, 0xf3);
    await new Qcow2Driver().reconcile(join(vm.dir, 'start'));
    expect(await vdaChain()).toEqual([base()]);
    expect((await blockList(vm.domain, true)).vda).toBe(base());
    expect(await leftovers()).toEqual([]);
    const again = await backup('start', 6, null);
    await again.release();
    expect(await vdaChain()).toEqual([overlay(6), base()]);
  });

  it('a plain FULL after the chain first commits the overlay back into the base', async () => {
    const prepared = await driver.prepareBackup({ id: 1, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, 'plain'),
    });
    expect(prepared.files[0]).toMatchObject({ name: 'disk.0.qcow2', source: { kind: 'file', path: base() } });
    await prepared.release();
    expect((await blockList(vm.domain)).vda).toBe(base());
    expect((await blockList(vm.domain, true)).vda).toBe(base());
    expect(await leftovers()).toEqual([]);
    await virsh('destroy', vm.domain);
    expect(sha(await readDisk(base(), 'qcow2', 0, SIZE))).toBe(sha(model));
  });
});

describe('qcow2 INCREMENT_MODE=SNAPSHOT on a powered-off raw disk', () => {
  let vm: TestVm;
  let out: string;
  const disk = () => {
    const d = vm.disks[0] as TestVm['disks'][number];
    return { id: 0, target: d.target, source: d.path, format: d.format, driver: 'qcow2' as const };
  };
  const backup = (workDir: string, n: number, parent: number | null) =>
    driver.prepareBackup({ id: 2, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, workDir),
      increment: {
        checkpoint: `lifeboat-r-${n}`,
        parent: parent === null ? null : `lifeboat-r-${parent}`,
        mode: 'SNAPSHOT',
      },
    });

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lifeboat-snap2-'));
    vm = await createTestVm({
      name: 'lb-disk-snap2',
      disks: [{ sizeMiB: 16, format: 'raw' }],
      running: false,
    });
  });
  afterAll(async () => {
    await vm?.destroy();
    await rm(out, { recursive: true, force: true });
  });

  it('starts the chain offline on the raw file, and a running increment restores exactly', async () => {
    await run({ file: 'qemu-io', args: ['-f', 'raw', '-c', 'write -P 0x41 0 1M', disk().source] });
    const full = await backup('r0', 0, null);
    expect(full.state).toBe('POWEROFF');
    expect(full.files[0]).toMatchObject({
      name: 'disk.0.raw',
      format: 'raw',
      source: { path: disk().source },
    });
    // The base is stable now: the VM may start and writes into its tracking overlay.
    await virsh('start', vm.domain);
    await guestWrite(vm.domain, 'vda', 4 * MiB, MiB, 0x42);
    await run({ file: 'cp', args: ['--sparse=always', disk().source, join(out, 'full.raw')] });
    await full.release();
    expect((await blockList(vm.domain)).vda).toBe(`${disk().source}.lifeboat-r-0.qcow2`);
    const inc = await backup('r1', 1, 0);
    const file = inc.files[0];
    if (file?.source.kind !== 'file') throw new Error('not a file');
    expect(file.name).toBe('disk.0.inc1.qcow2');
    await run({ file: 'cp', args: ['--sparse=always', file.source.path, join(out, 'inc1.qcow2')] });
    await inc.release();
    await virsh('destroy', vm.domain);
    const restored = await driver.restoreChain(
      [
        { path: join(out, 'full.raw'), format: 'raw' },
        { path: join(out, 'inc1.qcow2'), format: 'qcow2' },
      ],
      join(out, 'restored.qcow2'),
    );
    const top = `${disk().source}.lifeboat-r-1.qcow2`;
    expect((await blockList(vm.domain, true)).vda).toBe(top);
    const now = await readDisk(top, 'qcow2', 0, 16 * MiB);
    expect(now[4 * MiB]).toBe(0x42);
    expect((await readDisk(restored.path, 'qcow2', 0, 16 * MiB)).equals(now)).toBe(true);
    // A plain FULL commits the overlay back offline: the VM is on its raw file again.
    const cbt = await driver.prepareBackup({ id: 2, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, 'c0'),
    });
    await cbt.release();
    expect((await blockList(vm.domain, true)).vda).toBe(disk().source);
    expect(existsSync(top)).toBe(false);
    expect((await readDisk(disk().source, 'raw', 0, 16 * MiB)).equals(now)).toBe(true);
  });
});
