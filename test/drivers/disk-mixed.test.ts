/**
 * A VM with a qcow2 file disk and an rbd disk (a pool of its own in the run's one-node Ceph of
 * test/helpers/ceph-pool.ts, real running libvirt VM) backed up by the runner's backup task in one
 * task: a FULL that starts a chain, then an increment, both into restic; every point of both disks
 * restored and compared by sha256 with the disks as the guest had written them at backup time.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BackupTask } from '#core/contracts/tasks.ts';
import type { DatastoreTarget } from '#drivers/datastore/driver.ts';
import { resticDriver } from '#drivers/datastore/restic-driver.ts';
import type { DiskDriver, PointFile } from '#drivers/disk/driver.ts';
import { Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import { RbdDriver } from '#drivers/disk/rbd-driver.ts';
import { run } from '#drivers/exec.ts';
import { runBackup } from '#runner/tasks/backup.ts';
import type { TaskContext } from '#runner/tasks/context.ts';
import { type CephPool, cephPool } from '../helpers/ceph-pool.ts';
import {
  ensureLibvirt,
  guestWrite,
  kvmUsable,
  readDisk,
  removeTestVm,
  TEST_VM_ROOT,
  URI,
  virsh,
} from '../helpers/libvirt.ts';

const MiB = 1024 * 1024;
const NAME = 'lb-h13-pool-mixed';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let ceph: CephPool;
let dir: string;
let base: string;
const image = `${NAME}-vdb`;
const drivers: Record<string, DiskDriver> = {};
/** What the guest wrote, disk by disk: the expected bytes of each disk. */
const model = { vda: Buffer.alloc(16 * MiB), vdb: Buffer.alloc(8 * MiB) };

beforeAll(async () => {
  await ensureLibvirt();
  ceph = await cephPool();
  drivers.qcow2 = new Qcow2Driver(URI);
  drivers.rbd = new RbdDriver(URI, { conf: ceph.conf });
  await removeTestVm(NAME);
  dir = join(TEST_VM_ROOT, NAME);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', join(dir, 'vda.qcow2'), '16M'] });
  await ceph.rbd('create', '--size', '8M', `${ceph.pool}/${image}`);
  const type = (await kvmUsable()) ? 'kvm' : 'qemu';
  const xml = `<domain type='${type}'>
  <name>${NAME}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${join(dir, 'vda.qcow2')}'/><target dev='vda' bus='virtio'/><alias name='ua-vda'/></disk>
    <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/><source protocol='rbd' name='${ceph.pool}/${image}'><host name='${ceph.mon.host}' port='${ceph.mon.port}'/></source><target dev='vdb' bus='virtio'/><alias name='ua-vdb'/></disk>
  </devices>
</domain>`;
  await writeFile(join(dir, 'domain.xml'), xml);
  await virsh('define', join(dir, 'domain.xml'));
  await virsh('start', NAME);
  base = await mkdtemp(join(tmpdir(), 'lb-h13-mixed-'));
}, 300_000);

afterAll(async () => {
  await removeTestVm(NAME);
  await ceph?.rbd('snap', 'purge', `${ceph.pool}/${image}`).catch(() => {});
  await ceph?.rbd('rm', `${ceph.pool}/${image}`).catch(() => {});
  await ceph?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

async function write(target: 'vda' | 'vdb', offset: number, length: number, pattern: number) {
  await guestWrite(NAME, target, offset, length, pattern);
  model[target].fill(pattern, offset, offset + length);
}

it('file and rbd disks in one backup task: a chain of two points, each disk restored byte for byte', async () => {
  const target: DatastoreTarget = {
    id: 313,
    attributes: { BASE_PATH: base },
    secrets: { RESTIC_PASSWORD: 'h13-pool-mixed-pw' },
  };
  const log = Object.assign(() => {}, { child: () => log }) as unknown as TaskContext['log'];
  const ctx = (name: string): TaskContext => ({
    signal: new AbortController().signal,
    workDir: join(dir, `work-${name}`),
    stateDir: dir,
    restoreRoots: [],
    progress: { phase() {}, bytes() {}, flush: async () => {} },
    drivers: {
      disk: (name) => drivers[name ?? 'qcow2'] as DiskDriver,
      disks: () => Object.values(drivers),
      datastore: () => resticDriver,
    },
    target: async () => target,
    workDirOf: (id) => join(dir, id),
    abortRunning: async () => false,
    log,
  });
  const task = (id: number, checkpoint: string, parentCheckpoint: string | null): BackupTask => ({
    v: 1,
    kind: 'backup',
    taskId: `h13-mixed/${id}`,
    token: 'token-h13-mixed',
    heartbeatSeconds: 120,
    vm: { id: 9, domain: NAME, state: 'RUNNING' },
    disks: [
      { id: 0, target: 'vda', source: join(dir, 'vda.qcow2'), format: 'qcow2', driver: 'qcow2' },
      { id: 1, target: 'vdb', source: `${ceph.pool}/${image}`, format: 'rbd', driver: 'rbd' },
    ],
    config: { FS_FREEZE: 'SUSPEND', MODE: 'INCREMENT', INCREMENT_MODE: 'CBT' },
    increment: { chain: 1, parent: id === 0 ? null : id - 1, id, checkpoint, parentCheckpoint },
    datastore: { id: 313, driver: 'restic', attributes: { BASE_PATH: base }, sealedSecrets: null },
    imageId: 20 + id,
  });

  const expected: { vda: string; vdb: string }[] = [];
  const stored: BackupResult[] = [];
  await write('vda', 1 * MiB, MiB, 0x11);
  await write('vdb', 2 * MiB, MiB + 512, 0x22);
  stored.push(await runBackup(task(0, 'lifeboat-h13m-0', null), ctx('0')));
  expected.push({ vda: sha(model.vda), vdb: sha(model.vdb) });
  await write('vda', 5 * MiB, 64 * 1024, 0x33);
  await write('vdb', 6 * MiB, 4096, 0x44);
  stored.push(await runBackup(task(1, 'lifeboat-h13m-1', 'lifeboat-h13m-0'), ctx('1')));
  expected.push({ vda: sha(model.vda), vdb: sha(model.vdb) });
  // After the second backup: in no point.
  await write('vda', 5 * MiB, MiB, 0x55);
  await write('vdb', 0, MiB, 0x66);

  expect(stored[0]?.chainReset).toBeNull();
  expect(stored[0]?.disks.map((d) => [d.id, d.file])).toEqual([
    [0, 'disk.0.raw'],
    [1, 'disk.1.rbd'],
  ]);
  expect(stored[1]?.increment).toEqual({ id: 1, parent: 0, checkpoint: 'lifeboat-h13m-1' });
  expect(stored[1]?.disks.map((d) => [d.id, d.file])).toEqual([
    [0, 'disk.0.inc1.qcow2'],
    [1, 'disk.1.inc1.rbdiff'],
  ]);
  expect((await virsh('domstate', NAME)).trim()).toBe('running');

  const out = await mkdtemp(join(dir, 'restore-'));
  for (const [n] of stored.entries()) {
    for (const [diskId, tgt, driver] of [
      [0, 'vda', drivers.qcow2],
      [1, 'vdb', drivers.rbd],
    ] as const) {
      const points: PointFile[] = [];
      for (const backup of stored.slice(0, n + 1)) {
        const file = backup.disks.find((d) => d.id === diskId)?.file as string;
        const toPath = join(out, `p${n}-${backup.backupId}-${file}`);
        await writeFile(toPath, '', { mode: 0o600 });
        await resticDriver.download(target, { vmId: 9, backupId: backup.backupId, file, toPath });
        points.push({ path: toPath, name: file });
      }
      const restored = await (driver as DiskDriver).restorePoint(
        points,
        join(out, `point-${n}-${tgt}.qcow2`),
      );
      const size = model[tgt].length;
      expect(restored.virtualSize).toBe(size);
      expect(sha(await readDisk(restored.path, 'qcow2', 0, size)), `point ${n} ${tgt}`).toBe(
        expected[n]?.[tgt],
      );
    }
  }
}, 600_000);

type BackupResult = Awaited<ReturnType<typeof runBackup>>;
