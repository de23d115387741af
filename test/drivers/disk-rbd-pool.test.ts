/**
 * Restore into a Ceph pool (this file's own pool in the run's one-node cluster of
 * test/helpers/ceph-pool.ts, a running libvirt VM on an rbd image): a FULL and three increments
 * backed up by the runner's backup task into restic, then every point restored by the runner's
 * restore task with `pool` (`rbd import` and `rbd import-diff`) into a new image, equal by sha256
 * to `rbd export` of the VM's snapshot of that point; an existing image is never written over, nor
 * a pool the host's runner does not allow (LIFEBOAT_RESTORE_POOLS) written to. Then the VM shut
 * off and a point restored in place over its own image, with the task as Admit builds it (the disk
 * named `pool/image`).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackupResult, type BackupTask, RestoreTask } from '#core/contracts/tasks.ts';
import type { DatastoreTarget } from '#drivers/datastore/driver.ts';
import { resticDriver } from '#drivers/datastore/restic-driver.ts';
import { RbdDriver } from '#drivers/disk/rbd-driver.ts';
import { runBackup } from '#runner/tasks/backup.ts';
import type { TaskContext } from '#runner/tasks/context.ts';
import { runRestore } from '#runner/tasks/restore.ts';
import { type CephPool, cephPool } from '../helpers/ceph-pool.ts';
import {
  ensureLibvirt,
  guestWrite,
  kvmUsable,
  removeTestVm,
  TEST_VM_ROOT,
  URI,
  virsh,
} from '../helpers/libvirt.ts';

const MiB = 1024 * 1024;
const NAME = 'lb-h13-pool-import';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let ceph: CephPool;
let driver: RbdDriver;
let dir: string;
let base: string;
const image = `${NAME}-vda`;
const backups: BackupResult[] = [];
const expected: string[] = [];
let restore: (n: number, name: string) => RestoreTask;
let ctx: (name: string) => TaskContext;

beforeAll(async () => {
  await ensureLibvirt();
  ceph = await cephPool();
  driver = new RbdDriver(URI, { conf: ceph.conf });
  await removeTestVm(NAME);
  dir = join(TEST_VM_ROOT, NAME);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await ceph.rbd('create', '--size', '16M', `${ceph.pool}/${image}`);
  const type = (await kvmUsable()) ? 'kvm' : 'qemu';
  const xml = `<domain type='${type}'><name>${NAME}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
  <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/><source protocol='rbd' name='${ceph.pool}/${image}'><host name='${ceph.mon.host}' port='${ceph.mon.port}'/></source><target dev='vda' bus='virtio'/><alias name='ua-vda'/></disk>
  </devices></domain>`;
  await writeFile(join(dir, 'domain.xml'), xml);
  await virsh('define', join(dir, 'domain.xml'));
  await virsh('start', NAME);
  base = await mkdtemp(join(tmpdir(), 'lb-h13-pool-'));
}, 300_000);

afterAll(async () => {
  await removeTestVm(NAME);
  await ceph?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

async function exportSha(spec: string): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), 'lb-h13-pool-export-'));
  try {
    await ceph.rbd('export', '--no-progress', spec, join(out, 'x.raw'));
    return sha(await readFile(join(out, 'x.raw')));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

it('every point of a chain restores into a new image of the pool, equal to the snapshot of that point', async () => {
  const target: DatastoreTarget = {
    id: 414,
    attributes: { BASE_PATH: base },
    secrets: { RESTIC_PASSWORD: 'h13-pool-pw' },
  };
  const datastore = {
    id: 414,
    driver: 'restic' as const,
    attributes: { BASE_PATH: base },
    sealedSecrets: null,
  };
  const log = Object.assign(() => {}, { child: () => log }) as unknown as TaskContext['log'];
  ctx = (name: string): TaskContext => ({
    signal: new AbortController().signal,
    workDir: join(dir, `work-${name}`),
    stateDir: dir,
    restoreRoots: [],
    // This host's own allow-list (LIFEBOAT_RESTORE_POOLS of its runner).
    restorePools: [ceph.pool],
    progress: { phase() {}, bytes() {}, flush: async () => {} },
    drivers: { disk: () => driver, disks: () => [driver], datastore: () => resticDriver },
    target: async () => target,
    workDirOf: (id) => join(dir, id),
    abortRunning: async () => false,
    log,
  });
  for (let n = 0; n < 4; n++) {
    await guestWrite(NAME, 'vda', (1 + 3 * n) * MiB + 4096 * n, MiB + 512, 0x30 + n);
    const task: BackupTask = {
      v: 1,
      kind: 'backup',
      taskId: `h13-pool/b${n}`,
      token: 't',
      heartbeatSeconds: 120,
      vm: { id: 4, domain: NAME, state: 'RUNNING' },
      disks: [{ id: 0, target: 'vda', source: `${ceph.pool}/${image}`, format: 'rbd', driver: 'rbd' }],
      config: { FS_FREEZE: 'NONE', MODE: 'INCREMENT', INCREMENT_MODE: 'CBT' },
      increment: {
        chain: 1,
        parent: n === 0 ? null : n - 1,
        id: n,
        checkpoint: `lifeboat-h13p-${n}`,
        parentCheckpoint: n === 0 ? null : `lifeboat-h13p-${n - 1}`,
      },
      datastore,
      imageId: 40 + n,
    };
    backups.push(await runBackup(task, ctx(`b${n}`)));
    expected.push(await exportSha(`${ceph.pool}/${image}@lifeboat-h13p-${n}`));
  }
  expect(backups.map((b) => b.disks[0]?.file)).toEqual([
    'disk.0.rbd',
    'disk.0.inc1.rbdiff',
    'disk.0.inc2.rbdiff',
    'disk.0.inc3.rbdiff',
  ]);
  expect(new Set(expected).size).toBe(4);

  restore = (n: number, name: string): RestoreTask => ({
    v: 1,
    kind: 'restore',
    taskId: `h13-pool/r${n}-${name}`,
    token: 't',
    heartbeatSeconds: 120,
    imageId: 40 + n,
    vmId: 4,
    backupId: backups[0]?.backupId as string,
    disks: [{ id: 0, file: 'disk.0.rbd' }],
    datastore,
    target: name,
    confine: true,
    name,
    template: null,
    increment: n === 0 ? null : n,
    chain: backups
      .slice(1, n + 1)
      .map((b) => ({ backupId: b.backupId, disks: [{ id: 0, file: b.disks[0]?.file as string }] })),
    define: null,
    inPlace: null,
    pool: ceph.pool,
  });
  for (let n = 0; n < 4; n++) {
    const result = await runRestore(restore(n, `h13-point-${n}`), ctx(`r${n}`));
    expect(result.disks).toEqual([{ id: 0, path: `${ceph.pool}/h13-point-${n}-disk-0`, size: 16 * MiB }]);
    expect(await exportSha(`${ceph.pool}/h13-point-${n}-disk-0`), `point ${n}`).toBe(expected[n]);
    // A plain image: the snapshots import-diff made are gone.
    expect(
      JSON.parse(await ceph.rbd('snap', 'ls', '--format', 'json', `${ceph.pool}/h13-point-${n}-disk-0`)),
    ).toEqual([]);
  }

  // Never over an existing image: refused before anything is downloaded (no work folder), and
  // the image is left as it was.
  const before = await exportSha(`${ceph.pool}/h13-point-1-disk-0`);
  await expect(runRestore(restore(3, 'h13-point-1'), ctx('again'))).rejects.toMatchObject({
    name: 'Conflict',
    message: `rbd image ${ceph.pool}/h13-point-1-disk-0 already exists: a restore never writes over an image`,
  });
  await expect(readdir(join(dir, 'work-again'))).rejects.toMatchObject({ code: 'ENOENT' });
  expect(await exportSha(`${ceph.pool}/h13-point-1-disk-0`)).toBe(before);
  // A name no image may have (too long with its -disk-0) is refused as early.
  await expect(runRestore(restore(0, 'h'.repeat(125)), ctx('long'))).rejects.toMatchObject({
    name: 'ValidationError',
    message: expect.stringMatching(/^rbd image "h+" is not a name Lifeboat accepts/),
  });
  await expect(readdir(join(dir, 'work-long'))).rejects.toMatchObject({ code: 'ENOENT' });
  // Stored files that make no chain of one disk are refused before any is read: no image made.
  const into = await driver.prepareToPool(ceph.pool, 'h13-bad-chain');
  expect(into.image).toBe(`${ceph.pool}/h13-bad-chain`);
  const bad = ['disk.0.rbd', 'disk.1.inc1.rbdiff'].map((name) => ({ name, path: join(base, name) }));
  await expect(into.write(bad)).rejects.toMatchObject({
    name: 'ValidationError',
    message: 'backup file "disk.1.inc1.rbdiff" is not the next increment of disk 0',
  });
  expect(JSON.parse(await ceph.rbd('ls', '--format', 'json', ceph.pool))).not.toContain('h13-bad-chain');
  // A pool the host's runner does not allow, whatever the task says: refused before anything
  // is downloaded or written (no work folder, no image), also when the control plane let it pass.
  const images = await ceph.rbd('ls', '--format', 'json', ceph.pool);
  for (const [pools, pool] of [
    [[ceph.pool], 'other-pool'],
    [[], ceph.pool],
  ] as const) {
    await expect(
      runRestore({ ...restore(0, 'h13-refused'), pool }, { ...ctx('refused'), restorePools: pools }),
    ).rejects.toMatchObject({
      name: 'Forbidden',
      message: `pool: this host does not allow restores into pool "${pool}" (LIFEBOAT_RESTORE_POOLS of its runner)`,
    });
  }
  await expect(readdir(join(dir, 'work-refused'))).rejects.toMatchObject({ code: 'ENOENT' });
  expect(await ceph.rbd('ls', '--format', 'json', ceph.pool)).toBe(images);
  // An invalid pool name from the task is refused before any rbd call.
  await expect(runRestore({ ...restore(0, 'h13-bad'), pool: '-p x' }, ctx('bad'))).rejects.toThrow(
    'pool "-p x" is not a Ceph pool name',
  );
}, 600_000);

it('a point restored in place over the shut-off VM’s own image, as Admit asks it', async () => {
  await virsh('destroy', NAME);
  const task = RestoreTask.parse({
    ...restore(2, NAME),
    taskId: 'h13-pool/in-place',
    pool: null,
    inPlace: {
      domain: NAME,
      disks: [{ id: 0, source: `${ceph.pool}/${image}`, format: 'rbd' }],
      start: false,
    },
  });
  const result = await runRestore(task, ctx('in-place'));
  expect(result).toMatchObject({
    disks: [{ id: 0, path: `${ceph.pool}/${image}`, size: expect.any(Number) }],
    domain: NAME,
    started: false,
    notes: [],
  });
  expect(await exportSha(`${ceph.pool}/${image}`)).toBe(expected[2]);
  // The chain's snapshots went with the old image: the next backup starts a new chain.
  expect(JSON.parse(await ceph.rbd('snap', 'ls', '--format', 'json', `${ceph.pool}/${image}`))).toEqual([]);
  expect(JSON.parse(await ceph.rbd('ls', '--format', 'json', ceph.pool))).not.toContainEqual(
    expect.stringMatching(/lifeboat-(safety|restore)/),
  );
}, 300_000);
