/**
 * Incremental backups (MODE=INCREMENT) through local mode on real VMs, as an operator runs them:
 * a CBT chain of increments with guest writes at known offsets between them, across a VM restart
 * and a power-off; every point restored and compared with what the guest had written at that
 * point; a removed bitmap starting a new chain; the runner killed mid-increment; the same chain
 * on an rsync datastore; and a SNAPSHOT chain (tracking overlays) ending in an in-place restore.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { createTestVm, guestWrite, type TestVm, virsh } from '../helpers/libvirt.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';
import {
  backup,
  guestSha256,
  removeHome,
  restoreToFolder,
  type Stack,
  startStack,
  until,
} from './harness.ts';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
let stack: Stack;
let sshd: Sshd;
let scratch: string;
const testVms: TestVm[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-inc-'));
  sshd = await startSshd();
  stack = await startStack({ sshd });
  await stack.host();
}, 180_000);

afterAll(async () => {
  for (const vm of testVms) await vm.destroy().catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  await sshd?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

/**
 * A VM with one 64 MiB qcow2 disk and MODE=INCREMENT, and a model of its guest-visible bytes:
 * every write goes to the disk and the model, so the expected content of any point is known.
 */
async function chainVm(name: string, backupConfig: Record<string, string> = { MODE: 'INCREMENT' }) {
  const test = await createTestVm({
    name,
    disks: [{ sizeMiB: SIZE / MiB, format: 'qcow2' }],
    running: true,
    backupConfig,
  });
  testVms.push(test);
  const vm = await stack.vm(test.domain, 'RUNNING');
  const model = Buffer.alloc(SIZE);
  const path = test.disks[0]?.path as string;
  return {
    test,
    vm,
    /** A guest write of `byte` (running VM), or of `data` through qemu-img (powered-off VM). */
    async write(offset: number, length: number, byte: number) {
      await guestWrite(test.domain, 'vda', offset, length, byte);
      model.fill(byte, offset, offset + length);
    },
    async writeOffline(offset: number, data: Buffer, top = path) {
      const file = join(scratch, `${name}-${offset}.raw`);
      await writeFile(file, data);
      // Through QEMU's block layer (qemu-io), which keeps the disk's persistent bitmaps current.
      await run({
        file: 'qemu-io',
        args: ['-f', 'qcow2', '-c', `write -s ${file} ${offset} ${data.length}`, top],
      });
      data.copy(model, offset);
    },
    sha: () => sha256(model),
    /** Power-cycles the VM; back once the inventory sees it RUNNING (not paused while starting). */
    async restart() {
      await virsh('destroy', test.domain);
      await stack.vm(test.domain, 'POWEROFF');
      await virsh('start', test.domain);
      await stack.vm(test.domain, 'RUNNING');
    },
  };
}

function sha256(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

/** `datastore create ... --json`. */
function createDatastore(name: string, driver: string, attrs: Record<string, string>): Promise<Datastore> {
  return stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    name,
    '--driver',
    driver,
    ...Object.entries(attrs).flatMap(([k, v]) => ['--attr', `${k}=${v}`]),
  ]);
}

/** A backup that must succeed; answers its image. */
async function backupOk(vm: Vm, ds: Datastore): Promise<Image> {
  const out = await backup(stack, vm.id, ds.id);
  expect(out.execution?.state, out.stderr).toBe('SUCCEEDED');
  return stack.json<Image>(['image', 'show', String(out.execution?.imageId)]);
}

/** Sets KEEP_LAST (MODE=INCREMENT kept) with `vm backupconfig`. */
async function keepLast(vm: Vm, n: number): Promise<void> {
  const out = await stack.cli(['vm', 'backupconfig', String(vm.id), 'MODE=INCREMENT', `KEEP_LAST=${n}`]);
  expect(out.code, out.stderr).toBe(0);
}

/** The image once no flatten runs on it: READY, and its VM's ACTIVE_FLATTEN cleared. */
async function flattened(image: Image): Promise<Image> {
  return until(
    `image ${image.id} flattened`,
    async () => {
      const now = await stack.api<Image>('GET', `/images/${image.id}`);
      const vm = await stack.api<Vm>('GET', `/vms/${image.vmId}`);
      return now.state === 'READY' && vm.backups.BACKUP_CONFIG.ACTIVE_FLATTEN === undefined ? now : undefined;
    },
    120_000,
    250,
  );
}

/** sha256 of the guest-visible disk restored from `image` up to increment `point`. */
async function restoredSha(image: Image, point: number, name: string): Promise<string> {
  const dir = join(scratch, name);
  await restoreToFolder(stack, image.id, { dir, name, increment: point });
  const sha = await guestSha256(join(dir, `${name}-disk-0.qcow2`), 'qcow2');
  await rm(dir, { recursive: true, force: true });
  return sha;
}

describe('incremental backups on a restic datastore', () => {
  let ds: Datastore;
  let vm: Awaited<ReturnType<typeof chainVm>>;
  let chain: Image;
  /** sha256 of the guest disk at each point of the chain, by increment id. */
  const points: string[] = [];

  beforeAll(async () => {
    ds = await createDatastore('inc-restic', 'restic', {
      BASE_PATH: join(scratch, 'restic'),
      RESTIC_PASSWORD: 'inc restic pw',
    });
    vm = await chainVm('lb-e2e-inc');
  }, 60_000);

  it('a chain: the FULL, then 4 increments with writes between them, across a restart and a power-off', async () => {
    await vm.write(0, 2 * MiB, 0x11);
    chain = await backupOk(vm.vm, ds);
    points.push(vm.sha());
    expect(chain).toMatchObject({ mode: 'INCREMENT', state: 'READY' });

    await vm.write(5 * MiB, MiB, 0x22);
    await vm.write(0, 64 * 1024, 0x23);
    chain = await backupOk(vm.vm, ds);
    points.push(vm.sha());

    // Restarted between increments: the checkpoints survive in the disk and in libvirt.
    await vm.restart();
    await vm.write(40 * MiB, 3 * MiB, 0x33);
    chain = await backupOk(vm.vm, ds);
    points.push(vm.sha());

    // Powered off: the increment is read through the bitmap offline.
    await virsh('shutdown', vm.test.domain).catch(() => {});
    await virsh('destroy', vm.test.domain).catch(() => {});
    await stack.vm(vm.test.domain, 'POWEROFF');
    await vm.writeOffline(20 * MiB, randomBytes(MiB));
    chain = await backupOk(vm.vm, ds);
    points.push(vm.sha());

    await virsh('start', vm.test.domain);
    await stack.vm(vm.test.domain, 'RUNNING');
    await vm.write(63 * MiB, MiB, 0x44);
    chain = await backupOk(vm.vm, ds);
    points.push(vm.sha());

    expect(chain.increments.map((i) => [i.id, i.type])).toEqual([
      [0, 'FULL'],
      [1, 'INCREMENT'],
      [2, 'INCREMENT'],
      [3, 'INCREMENT'],
      [4, 'INCREMENT'],
    ]);
    // Only changed blocks are sent: each increment stores about what the guest wrote, not the disk.
    for (const increment of chain.increments.slice(1)) expect(increment.size).toBeLessThan(8 * MiB);
    const vmNow = await stack.api<Vm>('GET', `/vms/${vm.vm.id}`);
    expect(vmNow.backups.BACKUP_CONFIG).toMatchObject({
      INCREMENTAL_BACKUP_ID: String(chain.id),
      LAST_INCREMENT_ID: '4',
    });
  }, 300_000);

  it('every point restores exactly what the guest had written at that point', async () => {
    for (const [point, expected] of points.entries()) {
      expect(await restoredSha(chain, point, `inc-r${point}`), `point ${point}`).toBe(expected);
    }
  }, 300_000);

  it('a missing bitmap starts a new FULL chain and says why; never a wrong increment', async () => {
    const checkpoints = (await virsh('checkpoint-list', vm.test.domain, '--name'))
      .split('\n')
      .filter(Boolean);
    expect(checkpoints.length).toBeGreaterThan(0);
    for (const name of checkpoints) await virsh('checkpoint-delete', vm.test.domain, name.trim());
    await vm.write(30 * MiB, MiB, 0x55);
    const fresh = await backupOk(vm.vm, ds);
    expect(fresh.id).not.toBe(chain.id);
    expect(fresh.increments).toHaveLength(1);
    expect(fresh.increments[0]).toMatchObject({
      id: 0,
      type: 'FULL',
      resetReason: expect.stringMatching(/lifeboat-/),
    });
    expect(await restoredSha(fresh, 0, 'inc-reset')).toBe(vm.sha());
    // The old chain is untouched and still restorable.
    const old = await stack.json<Image>(['image', 'show', String(chain.id)]);
    expect(old).toMatchObject({ state: 'READY' });
    expect(old.increments).toHaveLength(5);
    chain = fresh;
    points.splice(0, points.length, vm.sha());
  }, 180_000);

  it('--reset starts a new chain on request', async () => {
    const out = await stack.cli([
      'vm',
      'backup',
      String(vm.vm.id),
      '-d',
      String(ds.id),
      '--reset',
      '--wait',
      '--json',
    ]);
    expect(out.code, out.stderr).toBe(0);
    const image = await stack.json<Image>([
      'image',
      'show',
      String((JSON.parse(out.stdout) as Execution).imageId),
    ]);
    expect(image.id).not.toBe(chain.id);
    expect(image.increments.map((i) => i.type)).toEqual(['FULL']);
    chain = image;
    points.splice(0, points.length, vm.sha());
  }, 120_000);

  it('the runner killed mid-increment: the chain stays as it was, and the next increment succeeds', async () => {
    // Slow uploads, so the runner is surely killed while the increment streams.
    await stack.json<Datastore>([
      'datastore',
      'update',
      String(ds.id),
      '--attr',
      'RESTIC_BWLIMIT=1024',
      '--attr',
      'RESTIC_COMPRESSION=off',
    ]);
    await virsh('destroy', vm.test.domain);
    await stack.vm(vm.test.domain, 'POWEROFF');
    await vm.writeOffline(8 * MiB, randomBytes(12 * MiB));
    const queued = await stack.json<Execution>(['vm', 'backup', String(vm.vm.id), '-d', String(ds.id)]);
    await until(
      `execution ${queued.id} uploading`,
      async () => {
        const e = await stack.api<Execution>('GET', `/executions/${queued.id}`);
        if (!['QUEUED', 'RUNNING'].includes(e.state)) throw new Error(`ended early: ${JSON.stringify(e)}`);
        return e.phase === 'uploading' && e.bytesDone > 0 ? e : undefined;
      },
      60_000,
      200,
    );
    const pid = await stack.runnerPid();
    process.kill(pid, 'SIGKILL');
    // The supervisor starts it again (local/keeper.ts).
    await stack.runnerRestarted(pid);
    const failed = await until(
      `execution ${queued.id} to end`,
      async () => {
        const e = await stack.api<Execution>('GET', `/executions/${queued.id}`);
        return ['QUEUED', 'RUNNING'].includes(e.state) ? undefined : e;
      },
      120_000,
    );
    expect(failed.state).toMatch(/^(FAILED|TIMED_OUT)$/);
    const after = await stack.json<Image>(['image', 'show', String(chain.id)]);
    expect(after).toMatchObject({ state: 'READY' });
    expect(after.increments).toHaveLength(chain.increments.length);

    await stack.json<Datastore>(['datastore', 'update', String(ds.id), '--attr', 'RESTIC_BWLIMIT=']);
    const next = await backupOk(vm.vm, ds);
    expect(next.id).toBe(chain.id);
    expect(next.increments.at(-1)).toMatchObject({ id: 1, type: 'INCREMENT' });
    points.push(vm.sha());
    for (const [point, expected] of points.entries()) {
      expect(await restoredSha(next, point, `inc-k${point}`), `point ${point}`).toBe(expected);
    }
  }, 300_000);

  it('KEEP_LAST=2 flattens the chain; every remaining point restores byte-identical', async () => {
    await virsh('start', vm.test.domain);
    await stack.vm(vm.test.domain, 'RUNNING');
    await keepLast(vm.vm, 2);
    await vm.write(12 * MiB, MiB, 0x77);
    const image = await backupOk(vm.vm, ds);
    expect(image.increments.map((i) => i.id)).toEqual([0, 1, 2]);
    points.push(vm.sha());
    const flat = await flattened(image);
    expect(flat.increments.map((i) => [i.id, i.type])).toEqual([
      [1, 'FULL'],
      [2, 'INCREMENT'],
    ]);
    for (const point of [1, 2]) {
      expect(await restoredSha(flat, point, `inc-f${point}`), `point ${point}`).toBe(points[point]);
    }
    const gone = await stack.cli([
      'image',
      'restore',
      String(flat.id),
      '--increment',
      '0',
      '--to',
      join(scratch, 'x'),
    ]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/increment 0/);
  }, 300_000);
});

describe('incremental backups on an rsync datastore', () => {
  it('a FULL and two increments, each point restored byte for byte', async () => {
    const ds = await createDatastore('inc-rsync', 'rsync', {
      BASE_PATH: join(scratch, 'rsync'),
      RSYNC_HOST: `${sshd.host}:${sshd.port}`,
    });
    const vm = await chainVm('lb-e2e-inc-rsync');
    const points: string[] = [];
    await vm.write(MiB, MiB, 0x61);
    let image = await backupOk(vm.vm, ds);
    points.push(vm.sha());
    for (const byte of [0x62, 0x63]) {
      await vm.write(byte * 64 * 1024, 256 * 1024, byte);
      image = await backupOk(vm.vm, ds);
      points.push(vm.sha());
    }
    expect(image.increments.map((i) => i.type)).toEqual(['FULL', 'INCREMENT', 'INCREMENT']);
    for (const [point, expected] of points.entries()) {
      expect(await restoredSha(image, point, `rs-r${point}`), `point ${point}`).toBe(expected);
    }

    // KEEP_LAST=2: the next increment makes 4 points; 0, 1 and 2 merge into a new base 2.
    await keepLast(vm.vm, 2);
    await vm.write(50 * MiB, MiB, 0x64);
    image = await backupOk(vm.vm, ds);
    points.push(vm.sha());
    const flat = await flattened(image);
    expect(flat.increments.map((i) => [i.id, i.type])).toEqual([
      [2, 'FULL'],
      [3, 'INCREMENT'],
    ]);
    for (const point of [2, 3]) {
      expect(await restoredSha(flat, point, `rs-f${point}`), `point ${point}`).toBe(points[point]);
    }
    // The merged backups are gone from the datastore: the new base and increment 3 remain.
    await until('the merged backups removed', async () => {
      const dirs = await readdir(join(scratch, 'rsync', String(vm.vm.id)));
      return dirs.filter((d) => !d.startsWith('.')).length === 2 ? true : undefined;
    });
    // The chain goes on from its new base.
    await vm.write(51 * MiB, MiB, 0x65);
    const next = await flattened(await backupOk(vm.vm, ds));
    expect(next.increments.map((i) => i.id)).toEqual([3, 4]);
    expect(await restoredSha(next, 4, 'rs-f4')).toBe(vm.sha());
  }, 400_000);
});

describe('INCREMENT_MODE=SNAPSHOT on a restic datastore', () => {
  it('a FULL and increments through a restart and a power-off, every point restored; in-place restore commits the overlays first', async () => {
    const ds = await createDatastore('inc-snap', 'restic', {
      BASE_PATH: join(scratch, 'restic-snap'),
      RESTIC_PASSWORD: 'snap restic pw',
    });
    const vm = await chainVm('lb-e2e-inc-snap', { MODE: 'INCREMENT', INCREMENT_MODE: 'SNAPSHOT' });
    const base = vm.test.disks[0]?.path as string;
    /** The file disk vda runs on now (the domain's persistent definition when it is off). */
    const top = async () => {
      const list = await virsh('domblklist', vm.test.domain);
      return (list.match(/^\s*vda\s+(\S+)/m) as RegExpMatchArray)[1] as string;
    };
    const points: string[] = [];

    await vm.write(0, 2 * MiB, 0x81);
    let image = await backupOk(vm.vm, ds);
    points.push(vm.sha());
    // The VM now writes into a tracking overlay beside its disk; the inventory still shows the disk.
    expect(await top()).toMatch(/\.lifeboat-[\w-]+\.qcow2$/);
    expect((await stack.api<Vm>('GET', `/vms/${vm.vm.id}`)).disks[0]?.source).toBe(base);

    await vm.write(6 * MiB, MiB, 0x82);
    image = await backupOk(vm.vm, ds);
    points.push(vm.sha());

    await vm.restart();
    await vm.write(33 * MiB, 2 * MiB, 0x83);
    image = await backupOk(vm.vm, ds);
    points.push(vm.sha());

    await virsh('destroy', vm.test.domain);
    await stack.vm(vm.test.domain, 'POWEROFF');
    await vm.writeOffline(48 * MiB, randomBytes(MiB), await top());
    image = await backupOk(vm.vm, ds);
    points.push(vm.sha());

    expect(image.increments.map((i) => i.type)).toEqual(['FULL', 'INCREMENT', 'INCREMENT', 'INCREMENT']);
    // An increment is the overlay of the writes since its parent, not the disk.
    for (const increment of image.increments.slice(1)) expect(increment.size).toBeLessThan(8 * MiB);
    for (const [point, expected] of points.entries()) {
      expect(await restoredSha(image, point, `snap-r${point}`), `point ${point}`).toBe(expected);
    }

    // In place, onto point 1: the overlays are committed first, then the disk holds point 1 exactly.
    const out = await stack.cli([
      'image',
      'restore',
      String(image.id),
      '--increment',
      '1',
      '--in-place',
      '--yes-overwrite',
      '--wait',
      '--json',
    ]);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ kind: 'restore', state: 'SUCCEEDED' });
    expect(await top()).toBe(base);
    expect(await guestSha256(base, 'qcow2')).toBe(points[1]);
    expect((await readdir(dirname(base))).filter((f) => f.includes('.lifeboat-'))).toEqual([]);

    // The disk changed under the chain: the restore ended it, and the next backup starts a new one.
    const after = await stack.api<Vm>('GET', `/vms/${vm.vm.id}`);
    expect(after.backups.BACKUP_CONFIG.INCREMENTAL_BACKUP_ID).toBeUndefined();
    await virsh('start', vm.test.domain);
    await stack.vm(vm.test.domain, 'RUNNING');
    const fresh = await backupOk(vm.vm, ds);
    expect(fresh.id).not.toBe(image.id);
    expect(fresh.increments.map((i) => i.type)).toEqual(['FULL']);
    expect(await restoredSha(fresh, 0, 'snap-fresh')).toBe(points[1]);
  }, 400_000);
});
