/**
 * The rbd disk driver on a throwaway one-node Ceph cluster (a pool of its own in the run's one,
 * test/helpers/ceph-pool.ts) and real libvirt VMs (OS-less, idling in the firmware) whose disks
 * are rbd images: the conformance suite, then what is particular to rbd: exports equal to
 * `rbd export` of the snapshot byte for byte, a chain of increments restored at every point, a
 * base snapshot removed by hand, reconcile leaving foreign snapshots alone, a cluster that does
 * not answer, and the inventory's sizes.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupTask } from '#core/contracts/tasks.ts';
import type { DatastoreTarget } from '#drivers/datastore/driver.ts';
import { resticDriver } from '#drivers/datastore/restic-driver.ts';
import type { BackupDisk, PointFile, PreparedBackup, PreparedFile } from '#drivers/disk/driver.ts';
import { readDomainInventory } from '#drivers/disk/inventory.ts';
import { Rbd } from '#drivers/disk/rbd-cli.ts';
import { RbdDriver } from '#drivers/disk/rbd-driver.ts';
import { run, runPipeline } from '#drivers/exec.ts';
import { freePort } from '#local/ports.ts';
import { runBackup } from '#runner/tasks/backup.ts';
import type { TaskContext } from '#runner/tasks/context.ts';
import { type CephPool, cephPool } from '../helpers/ceph-pool.ts';
import {
  ensureLibvirt,
  filledWith,
  guestWrite,
  kvmUsable,
  readDisk,
  removeTestVm,
  TEST_VM_ROOT,
  URI,
  virsh,
} from '../helpers/libvirt.ts';
import { copySource, diskConformance, type FixtureVm } from './disk.conformance.ts';

const MiB = 1024 * 1024;
let ceph: CephPool;
let driver: RbdDriver;

beforeAll(async () => {
  await ensureLibvirt();
  ceph = await cephPool();
  // The inventory (and any driver of the registry) finds the cluster as a host's would.
  process.env.CEPH_CONF = ceph.conf;
  driver = new RbdDriver(URI, { conf: ceph.conf });
}, 300_000);
afterAll(async () => {
  await ceph?.stop();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A VM whose disks are new rbd images `<name>-vd?` of the sizes given (MiB). */
async function createRbdVm(name: string, sizes: number[], running: boolean): Promise<FixtureVm> {
  await removeTestVm(name);
  const dir = join(TEST_VM_ROOT, name);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const disks: BackupDisk[] = [];
  for (const [id, size] of sizes.entries()) {
    const target = `vd${String.fromCharCode(97 + id)}`;
    const image = `${name}-${target}`;
    await removeImage(image);
    await ceph.rbd('create', '--size', `${size}M`, `${ceph.pool}/${image}`);
    disks.push({ id, target, source: `${ceph.pool}/${image}`, format: 'rbd', driver: 'rbd' });
  }
  const type = (await kvmUsable()) ? 'kvm' : 'qemu';
  const xml = `<domain type='${type}'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
${disks
  .map(
    (d) =>
      `    <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>` +
      `<source protocol='rbd' name='${d.source}'><host name='${ceph.mon.host}' port='${ceph.mon.port}'/></source>` +
      `<target dev='${d.target}' bus='virtio'/><alias name='ua-${d.target}'/></disk>`,
  )
  .join('\n')}
  </devices>
</domain>`;
  await writeFile(join(dir, 'domain.xml'), xml);
  await virsh('define', join(dir, 'domain.xml'));
  if (running) await virsh('start', name);
  return {
    domain: name,
    dir,
    disks,
    destroy: async () => {
      await removeTestVm(name);
      for (const disk of disks) await removeImage(disk.source.split('/')[1] as string);
    },
  };
}

async function removeImage(image: string): Promise<void> {
  await ceph.rbd('snap', 'purge', `${ceph.pool}/${image}`).catch(() => {});
  await ceph.rbd('rm', `${ceph.pool}/${image}`).catch(() => {});
}

/** `rbd export` of an image (or `image@snap`) into a fresh file; its bytes. */
async function exportImage(spec: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'lb-rbd-export-'));
  try {
    await ceph.rbd('export', '--no-progress', spec, join(dir, 'out.raw'));
    return await readFile(join(dir, 'out.raw'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function snapshots(spec: string): Promise<string[]> {
  return (JSON.parse(await ceph.rbd('snap', 'ls', '--format', 'json', spec)) as { name: string }[]).map(
    (s) => s.name,
  );
}

diskConformance('rbd', async () => ({
  driver,
  freshDriver: () => new RbdDriver(URI, { conf: ceph.conf }),
  createVm: (name, running) => createRbdVm(`${name}-h13`, [16, 8], running),
  async readVmDisk(_vm, disk, offset, length) {
    return (await exportImage(disk.source)).subarray(offset, offset + length);
  },
  immutableSources: true,
}));

describe('rbd specifics', () => {
  let vm: FixtureVm;
  let out: string;
  const disk = () => vm.disks[0] as BackupDisk;
  const backup = (
    workDir: string,
    increment?: { checkpoint: string; parent: string | null; index: number },
  ) =>
    driver.prepareBackup({ id: 7, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, workDir),
      ...(increment ? { increment } : {}),
    });
  /** Stores the prepared disk as a datastore would (the stream into a file), then releases. */
  const store = async (prepared: PreparedBackup, dir: string): Promise<PointFile> => {
    await mkdir(join(out, dir), { recursive: true });
    const file = prepared.files[0] as PreparedFile;
    const path = join(out, dir, file.name);
    try {
      await copySource(file.source, path);
    } finally {
      await prepared.release();
    }
    return { path, name: file.name };
  };

  beforeAll(async () => {
    vm = await createRbdVm('lb-rbd-h13-chain', [32], true);
    out = await mkdtemp(join(vm.dir, 'out-'));
  }, 120_000);
  afterAll(() => vm?.destroy());

  it('reports the real size and increments in the inventory', async () => {
    const inv = await readDomainInventory(vm.domain);
    expect(inv.disks).toEqual([
      {
        id: 0,
        target: 'vda',
        source: disk().source,
        format: 'rbd',
        size: 32 * MiB,
        volatile: false,
        canIncrement: true,
      },
    ]);
  });

  it('a FULL streams exactly `rbd export` of its snapshot, and removes that snapshot on release', async () => {
    await guestWrite(vm.domain, 'vda', 3 * MiB, 2 * MiB, 0x5a);
    const prepared = await backup('full-1');
    const file = prepared.files[0] as PreparedFile;
    expect(file).toMatchObject({ diskId: 0, name: 'disk.0.rbd', format: 'raw', virtualSize: 32 * MiB });
    expect(file.source.kind).toBe('stream');
    const [snap] = (await snapshots(disk().source)).filter((s) => s.startsWith('lifeboat-full-'));
    expect(snap).toBeDefined();
    const expected = sha(await exportImage(`${disk().source}@${snap}`));
    await guestWrite(vm.domain, 'vda', 3 * MiB, MiB, 0x77); // after the snapshot: not in the backup
    const stored = await store(prepared, 'full-1');
    expect(sha(await readFile(stored.path))).toBe(expected);
    expect(await snapshots(disk().source)).toEqual([]);
  });

  it('a chain of a FULL and three increments restores every point byte for byte, keeping two snapshots', async () => {
    await ceph.rbd('snap', 'create', `${disk().source}@operator-snap`);
    const points: PointFile[] = [];
    const expected: string[] = [];
    for (let n = 0; n < 4; n++) {
      await guestWrite(vm.domain, 'vda', (4 + 3 * n) * MiB + 4096 * n, MiB + 512, 0x30 + n);
      const prepared = await backup(`chain-${n}`, {
        checkpoint: `lifeboat-h13-${n}`,
        parent: n === 0 ? null : `lifeboat-h13-${n - 1}`,
        index: n,
      });
      expect(prepared.files[0]?.name).toBe(n === 0 ? 'disk.0.rbd' : `disk.0.inc${n}.rbdiff`);
      expected.push(sha(await exportImage(`${disk().source}@lifeboat-h13-${n}`)));
      await guestWrite(vm.domain, 'vda', 30 * MiB, MiB, 0xe0 + n); // after the point
      points.push(await store(prepared, `chain-${n}`));
      const kept = (await snapshots(disk().source)).filter((s) => s.startsWith('lifeboat-'));
      expect(kept.sort()).toEqual(
        n === 0 ? ['lifeboat-h13-0'] : [`lifeboat-h13-${n - 1}`, `lifeboat-h13-${n}`],
      );
    }
    // An increment holds the changed data (about 2 MiB here, in rbd's extents), not the 32 MiB disk.
    const incSize = (await readFile(points[1]?.path as string)).length;
    expect(incSize).toBeLessThan(8 * MiB);
    for (let k = 0; k < 4; k++) {
      const copies = await Promise.all(
        points.slice(0, k + 1).map(async (p, i) => {
          const path = join(out, `copy-${k}-${i}-${p.name}`);
          await run({ file: 'cp', args: [p.path, path] });
          return { path, name: p.name };
        }),
      );
      const restored = await driver.restorePoint(copies, join(out, 'restored', `p${k}.qcow2`));
      expect(restored).toMatchObject({ format: 'qcow2', virtualSize: 32 * MiB });
      expect(sha(await readDisk(restored.path, 'qcow2', 0, 32 * MiB)), `point ${k}`).toBe(expected[k]);
    }
    // Increments out of order are refused before anything is written.
    await expect(
      driver.restorePoint(
        [points[0], points[2], points[1]] as PointFile[],
        join(out, 'restored', 'bad.qcow2'),
      ),
    ).rejects.toMatchObject({ name: 'ValidationError' });
    // A skipped increment does not fit: refused (a wrong disk is never written). (The FULL is
    // raw bytes that name no snapshot: the chain's order from the control plane is trusted there.)
    const skip = await Promise.all(
      [points[0], points[1], points[3]].map(async (p, i) => {
        const path = join(out, `skip-${i}-${p?.name}`);
        await run({ file: 'cp', args: [p?.path as string, path] });
        return { path, name: p?.name as string };
      }),
    );
    await expect(driver.restorePoint(skip, join(out, 'restored', 'skip.qcow2'))).rejects.toMatchObject({
      name: 'UnsafeDiskImage',
    });
    expect(await snapshots(disk().source)).toContain('operator-snap');
  });

  it('a base snapshot removed by hand is ChainBroken with the reason, and a new chain follows', async () => {
    await ceph.rbd('snap', 'rm', `${disk().source}@lifeboat-h13-3`);
    await expect(
      backup('broken', { checkpoint: 'lifeboat-h13-4', parent: 'lifeboat-h13-3', index: 4 }),
    ).rejects.toMatchObject({
      name: 'ChainBroken',
      message: `snapshot lifeboat-h13-3 of ${disk().source} (disk vda) is gone: the chain cannot be followed`,
    });
    expect(await snapshots(disk().source)).not.toContain('lifeboat-h13-4');
    const start = await backup('new-0', { checkpoint: 'lifeboat-h13-new-0', parent: null, index: 0 });
    expect(start.files[0]?.name).toBe('disk.0.rbd');
    await store(start, 'new-0');
    const next = await backup('new-1', {
      checkpoint: 'lifeboat-h13-new-1',
      parent: 'lifeboat-h13-new-0',
      index: 1,
    });
    expect(next.files[0]?.name).toBe('disk.0.inc1.rbdiff');
    await store(next, 'new-1');
  });

  it('reconcile after a crash removes the snapshot it made and leaves foreign ones alone', async () => {
    await ceph.rbd('snap', 'create', `${disk().source}@lifeboat-not-ours`);
    const workDir = join(vm.dir, 'crashed');
    await backup('crashed', { checkpoint: 'lifeboat-h13-crash', parent: 'lifeboat-h13-new-1', index: 2 });
    expect(await snapshots(disk().source)).toContain('lifeboat-h13-crash');
    // The runner died here: no release.
    const done = await new RbdDriver(URI, { conf: ceph.conf }).reconcile(workDir);
    expect(done).toEqual([`removed snapshot ${disk().source}@lifeboat-h13-crash`]);
    expect((await snapshots(disk().source)).sort()).toEqual(
      ['lifeboat-h13-new-0', 'lifeboat-h13-new-1', 'lifeboat-not-ours', 'operator-snap'].sort(),
    );
    expect(await new RbdDriver(URI, { conf: ceph.conf }).reconcile(workDir)).toEqual([]);
  });

  it('a failed upload drops the new snapshot, so the same point can be tried again', async () => {
    const prepared = await backup('failed', {
      checkpoint: 'lifeboat-h13-new-2',
      parent: 'lifeboat-h13-new-1',
      index: 2,
    });
    await prepared.release({ failed: true });
    expect(await snapshots(disk().source)).not.toContain('lifeboat-h13-new-2');
    expect(await snapshots(disk().source)).toContain('lifeboat-h13-new-1');
  });

  it('names from the VM or the task that could become options are refused before any rbd call', async () => {
    await expect(
      backup('bad-name', { checkpoint: '--pool=x', parent: null, index: 0 }),
    ).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(
      driver.prepareBackup({ id: 7, domain: vm.domain }, [{ ...disk(), source: '-x/img' }], {
        freeze: 'NONE',
        workDir: join(vm.dir, 'bad-source'),
      }),
    ).rejects.toMatchObject({ name: 'DiskMismatch' });
  });

  it('a cluster that does not answer fails with CephTimeout, in time', async () => {
    const dead = join(out, 'dead.conf');
    await writeFile(
      dead,
      `[global]\nmon host = v1:127.0.0.1:${await freePort()}\nauth client required = none\n`,
    );
    const raw = join(out, 'dead.raw');
    await writeFile(raw, Buffer.alloc(MiB, 1));
    /** `call` fails as `expected`, within 15 s of its own start. */
    const inTime = async (call: () => Promise<unknown>, expected: object) => {
      const started = Date.now();
      await expect(call()).rejects.toMatchObject(expected);
      expect(Date.now() - started).toBeLessThan(15_000);
    };
    // Three calls that each wait out their own deadline: side by side, none waits for another.
    await Promise.all([
      inTime(
        () =>
          new RbdDriver(URI, { conf: dead, timeoutMs: 3000 }).prepareBackup(
            { id: 7, domain: vm.domain },
            [disk()],
            {
              freeze: 'NONE',
              workDir: join(vm.dir, 'dead'),
              increment: { checkpoint: 'lifeboat-h13-dead-1', parent: 'lifeboat-h13-dead-0', index: 1 },
            },
          ),
        {
          name: 'CephTimeout',
          message: expect.stringMatching(/^rbd snap ls .* did not answer within 3 s/),
        },
      ),
      // A stream (hours long: no single deadline) fails too, by librados' own per-step deadlines.
      inTime(
        () =>
          runPipeline([
            new Rbd({ conf: dead, timeoutMs: 3000 }).streamCommand([
              'export',
              '--no-progress',
              `${disk().source}@lifeboat-h13-dead-0`,
              '-',
            ]),
            { file: 'wc', args: ['-c'] },
          ]),
        { name: 'ExecError', message: expect.stringMatching(/^rbd .*export.* failed/) },
      ),
      // So does a call that moves disk data into the cluster (an import: no single deadline either).
      inTime(
        () =>
          new Rbd({ conf: dead, timeoutMs: 3000 }).transfer([
            'import',
            '--no-progress',
            raw,
            `${disk().source}-new`,
          ]),
        { name: 'CephFailed', message: expect.stringMatching(/^rbd import .* failed/) },
      ),
    ]);
  });

  it('for a datastore of files: a FULL is the snapshot mounted as a file, an increment a file of changes', async () => {
    const workDir = join(vm.dir, 'files-0');
    const start = await driver.prepareBackup({ id: 7, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir,
      fileSources: true,
      increment: { checkpoint: 'lifeboat-h13-files-0', parent: null, index: 0 },
    });
    const full = start.files[0] as PreparedFile;
    expect(full).toMatchObject({
      name: 'disk.0.rbd',
      source: { kind: 'file', path: join(workDir, 'mnt-0', 'nbd') },
    });
    await guestWrite(vm.domain, 'vda', 0, MiB, 0x66); // after the snapshot: not in the file
    // rsync reads it as any file (sparse, as the rsync datastore does).
    const copy = join(out, 'files-0.raw');
    await run({ file: 'rsync', args: ['-S', (full.source as { path: string }).path, copy] });
    expect(sha(await readFile(copy))).toBe(sha(await exportImage(`${disk().source}@lifeboat-h13-files-0`)));
    await start.release();
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(workDir);
    await expect(readdir(workDir)).rejects.toMatchObject({ code: 'ENOENT' });

    const next = await driver.prepareBackup({ id: 7, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir: join(vm.dir, 'files-1'),
      fileSources: true,
      increment: { checkpoint: 'lifeboat-h13-files-1', parent: 'lifeboat-h13-files-0', index: 1 },
    });
    const inc = next.files[0] as PreparedFile;
    const incPath = join(vm.dir, 'files-1', 'disk.0.inc1.rbdiff');
    expect(inc).toMatchObject({ name: 'disk.0.inc1.rbdiff', source: { kind: 'file', path: incPath } });
    const stored = join(out, 'files-1.rbdiff');
    await run({ file: 'cp', args: [incPath, stored] });
    const expected = sha(await exportImage(`${disk().source}@lifeboat-h13-files-1`));
    await next.release();
    await expect(readdir(join(vm.dir, 'files-1'))).rejects.toMatchObject({ code: 'ENOENT' });
    const restored = await driver.restorePoint(
      [
        { path: copy, name: 'disk.0.rbd' },
        { path: stored, name: 'disk.0.inc1.rbdiff' },
      ],
      join(out, 'restored', 'files-1.qcow2'),
    );
    expect(sha(await readDisk(restored.path, 'qcow2', 0, 32 * MiB))).toBe(expected);
  });

  it('reconcile unmounts a snapshot file a crashed runner left, then removes the snapshot', async () => {
    const workDir = join(vm.dir, 'files-crash');
    await driver.prepareBackup({ id: 7, domain: vm.domain }, [disk()], {
      freeze: 'NONE',
      workDir,
      fileSources: true,
    });
    expect(await readFile('/proc/self/mountinfo', 'utf8')).toContain(join(workDir, 'mnt-0'));
    const done = await new RbdDriver(URI, { conf: ceph.conf }).reconcile(workDir);
    expect(done[0]).toBe(`unmounted ${join(workDir, 'mnt-0')}`);
    expect(done[1]).toMatch(new RegExp(`^removed snapshot ${disk().source}@lifeboat-full-`));
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(workDir);
    expect((await snapshots(disk().source)).filter((s) => s.startsWith('lifeboat-full-'))).toEqual([]);
    await expect(readdir(workDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('through restic: the export streamed into `restic backup --stdin`, a chain read back and restored', async () => {
    const base = await mkdtemp(join(tmpdir(), 'lb-rbd-restic-'));
    const target: DatastoreTarget = {
      id: 130,
      attributes: { BASE_PATH: base },
      secrets: { RESTIC_PASSWORD: 'rbd-h13-secret-pw' },
    };
    try {
      const points: PointFile[] = [];
      let expected = '';
      for (let n = 0; n < 2; n++) {
        await guestWrite(vm.domain, 'vda', (20 + n) * MiB, MiB, 0x40 + n);
        const prepared = await backup(`restic-${n}`, {
          checkpoint: `lifeboat-h13-restic-${n}`,
          parent: n === 0 ? null : 'lifeboat-h13-restic-0',
          index: n,
        });
        const file = prepared.files[0] as PreparedFile;
        expect(file.source.kind).toBe('stream');
        expected = sha(await exportImage(`${disk().source}@lifeboat-h13-restic-${n}`));
        let output: Awaited<ReturnType<typeof resticDriver.backup>>;
        try {
          output = await resticDriver.backup(target, {
            vmId: 7,
            imageId: 1,
            files: [{ name: file.name, source: file.source }],
            template: prepared.template,
          });
        } finally {
          await prepared.release();
        }
        const toPath = join(out, `restic-${n}-${file.name}`);
        await writeFile(toPath, '', { mode: 0o600 });
        await resticDriver.download(target, { vmId: 7, backupId: output.backupId, file: file.name, toPath });
        points.push({ path: toPath, name: file.name });
      }
      const restored = await driver.restorePoint(points, join(out, 'restored', 'restic-1.qcow2'));
      expect(sha(await readDisk(restored.path, 'qcow2', 0, 32 * MiB))).toBe(expected);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  it("through the runner's backup task: a removed base snapshot gives a new FULL with the reason, then increments", async () => {
    const base = await mkdtemp(join(tmpdir(), 'lb-rbd-runner-'));
    const target: DatastoreTarget = {
      id: 131,
      attributes: { BASE_PATH: base },
      secrets: { RESTIC_PASSWORD: 'rbd-h13-runner-pw' },
    };
    const log = Object.assign(() => {}, { child: () => log }) as unknown as TaskContext['log'];
    const ctx = (name: string): TaskContext => ({
      signal: new AbortController().signal,
      workDir: join(vm.dir, `runner-${name}`),
      stateDir: vm.dir,
      restoreRoots: [],
      progress: { phase() {}, bytes() {}, flush: async () => {} },
      drivers: { disk: () => driver, disks: () => [driver], datastore: () => resticDriver },
      target: async () => target,
      workDirOf: (id) => join(vm.dir, id),
      abortRunning: async () => false,
      log,
    });
    const task = (increment: BackupTask['increment']): BackupTask => ({
      v: 1,
      kind: 'backup',
      taskId: 'h13/RunOnHost',
      token: 'token-h13',
      heartbeatSeconds: 120,
      vm: { id: 7, domain: vm.domain, state: 'RUNNING' },
      disks: [disk()],
      config: { FS_FREEZE: 'NONE', MODE: 'INCREMENT', INCREMENT_MODE: 'CBT' },
      increment,
      datastore: { id: 131, driver: 'restic', attributes: { BASE_PATH: base }, sealedSecrets: null },
      imageId: 11,
    });
    try {
      const reset = await runBackup(
        task({
          chain: 11,
          parent: 5,
          id: 6,
          checkpoint: 'lifeboat-h13-run-a',
          parentCheckpoint: 'lifeboat-h13-gone',
        }),
        ctx('a'),
      );
      expect(reset.chainReset).toBe(
        `snapshot lifeboat-h13-gone of ${disk().source} (disk vda) is gone: the chain cannot be followed`,
      );
      expect(reset.increment).toEqual({ id: 0, parent: null, checkpoint: 'lifeboat-h13-run-a' });
      expect(reset.disks).toEqual([
        expect.objectContaining({ id: 0, file: 'disk.0.rbd', format: 'raw', virtualSize: 32 * MiB }),
      ]);
      const next = await runBackup(
        task({
          chain: 11,
          parent: 0,
          id: 1,
          checkpoint: 'lifeboat-h13-run-b',
          parentCheckpoint: 'lifeboat-h13-run-a',
        }),
        ctx('b'),
      );
      expect(next.chainReset).toBeNull();
      expect(next.disks).toEqual([
        expect.objectContaining({ id: 0, file: 'disk.0.inc1.rbdiff', format: 'rbd-diff' }),
      ]);
      expect(next.disks[0]?.size).toBeLessThan(32 * MiB);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  it('a stream is what `rbd import` reads back: the stored FULL is the raw image', async () => {
    const prepared = await backup('import');
    const stored = await store(prepared, 'import');
    await ceph.rbd('import', '--no-progress', stored.path, `${ceph.pool}/lb-rbd-h13-imported`);
    try {
      expect(sha(await exportImage(`${ceph.pool}/lb-rbd-h13-imported`))).toBe(
        sha(await readFile(stored.path)),
      );
      expect(filledWith((await readFile(stored.path)).subarray(3 * MiB, 4 * MiB), 0x77)).toBe(true);
    } finally {
      await removeImage('lb-rbd-h13-imported');
    }
  });
});
