/**
 * The in-place swap on a real (shut-off) libvirt domain: every disk swapped or none, safety
 * copies put back on failure (and after a crash, from the work folder's record), removed on
 * success, and a domain that is not shut off refused before anything moves. The restore task
 * writes libvirt's own disk files, whatever file the task names.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreTask } from '#core/contracts/tasks.ts';
import type { DatastoreDriver } from '#drivers/datastore/driver.ts';
import { checkInPlace, incomingPath, safetyPath, swapDisks, undoInPlace } from '#drivers/disk/in-place.ts';
import { Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import { fakeDrivers, fakeRunner, sealedDatastore, until } from '../../runner/testing/fakes.ts';
import { createTestVm, type TestVm } from '../helpers/libvirt.ts';

let vm: TestVm;
let work: string;

beforeAll(async () => {
  vm = await createTestVm({
    name: 'lb-inplace-unit',
    disks: [
      { sizeMiB: 1, format: 'raw' },
      { sizeMiB: 1, format: 'raw' },
    ],
    running: false,
    nic: false,
  });
  work = await mkdtemp(join(tmpdir(), 'lifeboat-inplace-'));
}, 120_000);

afterAll(async () => {
  await vm?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

const disks = () => vm.disks.map((d, id) => ({ id, source: d.path, format: 'raw' as const }));

async function reset(): Promise<void> {
  for (const [i, d] of vm.disks.entries()) {
    await writeFile(d.path, `old-${i}`);
    await rm(incomingPath(d.path), { force: true });
    await rm(safetyPath(d.path), { force: true });
  }
}

describe('in-place swap', () => {
  it('swaps every disk and removes the safety copies', async () => {
    await reset();
    for (const [i, d] of vm.disks.entries()) await writeFile(incomingPath(d.path), `new-${i}`);
    await swapDisks(vm.domain, disks(), work);
    expect(await Promise.all(vm.disks.map((d) => readFile(d.path, 'utf8')))).toEqual(['new-0', 'new-1']);
    expect((await readdir(vm.dir)).sort()).toEqual(['domain.xml', 'vda.raw', 'vdb.raw']);
  });

  it('puts every old disk back when one cannot be swapped in', async () => {
    await reset();
    // Only the first disk was staged: the second rename fails after the first swap.
    await writeFile(incomingPath(vm.disks[0]?.path as string), 'new-0');
    await expect(swapDisks(vm.domain, disks(), work)).rejects.toThrow(/ENOENT/);
    expect(await Promise.all(vm.disks.map((d) => readFile(d.path, 'utf8')))).toEqual(['old-0', 'old-1']);
    expect((await readdir(vm.dir)).sort()).toEqual(['domain.xml', 'vda.raw', 'vdb.raw']);
  });

  it('after a crash mid-swap, undoInPlace puts the safety copies back from the record', async () => {
    await reset();
    const [a] = vm.disks as [TestVm['disks'][number]];
    // What a runner killed between the two renames of disk 0 leaves.
    await writeFile(join(work, 'in-place.json'), JSON.stringify({ disks: vm.disks.map((d) => d.path) }));
    await writeFile(safetyPath(a.path), 'old-0');
    await rm(a.path);
    await writeFile(incomingPath(a.path), 'new-0');
    expect(await undoInPlace(work)).toEqual([`put back ${a.path}`]);
    expect(await readFile(a.path, 'utf8')).toBe('old-0');
    expect((await readdir(vm.dir)).sort()).toEqual(['domain.xml', 'vda.raw', 'vdb.raw']);
    expect(await undoInPlace(work)).toEqual([]);
  });

  it('refuses before anything moves: a leftover safety copy, a missing disk, an unknown domain', async () => {
    await reset();
    await writeFile(safetyPath(vm.disks[1]?.path as string), 'old');
    await expect(checkInPlace(vm.domain, disks())).rejects.toThrow(/left from an earlier in-place restore/);
    await rm(safetyPath(vm.disks[1]?.path as string));
    await expect(
      checkInPlace(vm.domain, [{ id: 0, source: join(vm.dir, 'nope.raw'), format: 'raw' }]),
    ).rejects.toThrow(/nope.raw does not exist/);
    await expect(checkInPlace('lb-no-such-domain', disks())).rejects.toThrow(/does not exist on this host/);
    await expect(checkInPlace(vm.domain, disks())).resolves.toBeUndefined();
  });
});

describe('in-place restore task: the files come from libvirt, never from the task', () => {
  const RESTORED = Buffer.alloc(64 * 1024, 0xcd);
  const restoredFiles: string[] = [];

  /** A runner whose datastore hands back RESTORED as disk.<id>.raw, with the real qcow2 driver. */
  async function runner() {
    const real = new Qcow2Driver();
    const store: Partial<DatastoreDriver> = {
      restore: async (_t, ref) => {
        await mkdir(ref.toDir, { recursive: true });
        return Promise.all(
          ref.files.map(async (name) => {
            await writeFile(join(ref.toDir, name), RESTORED);
            restoredFiles.push(name);
            return { name, path: join(ref.toDir, name), size: RESTORED.length };
          }),
        );
      },
    };
    const drivers = fakeDrivers(
      {
        restoreDisk: (...args) => real.restoreDisk(...args),
        restoreChain: (...args) => real.restoreChain(...args),
        prepareInPlace: (...args) => real.prepareInPlace(...args),
      },
      store,
    );
    const r = await fakeRunner({ drivers });
    return r;
  }

  const task = (n: number, id: number, source: string): RestoreTask => ({
    v: 1,
    kind: 'restore',
    taskId: `${n}/RunOnHost`,
    token: `ip-${n}`,
    heartbeatSeconds: 120,
    imageId: 9,
    vmId: 3,
    backupId: 'snap-1',
    disks: [{ id, file: `disk.${id}.raw` }],
    datastore: sealedDatastore({ RESTIC_PASSWORD: 'pw' }),
    target: '/tmp/lb-in-place-unused',
    confine: false,
    name: vm.domain,
    template: null,
    increment: null,
    chain: [],
    inPlace: { domain: vm.domain, disks: [{ id, source, format: 'raw' }], start: false },
  });

  async function restoreNaming(source: string, n: number) {
    await reset();
    const r = await runner();
    try {
      await r.executor.accept(task(n, 1, source));
      await until(() => r.tokens.answers().length === 1, 30_000);
      return r.tokens.answers()[0];
    } finally {
      await r.remove();
    }
  }

  it('a task naming another file restores onto the domain’s real disk and leaves that file alone', async () => {
    const decoy = join(work, 'decoy.raw');
    await writeFile(decoy, 'not a disk of this VM');
    const answer = await restoreNaming(decoy, 20);
    const vdb = vm.disks[1]?.path as string;
    expect(answer).toMatchObject({
      call: 'success',
      output: {
        disks: [{ id: 1, path: vdb }],
        domain: vm.domain,
        notes: [
          `disk 1: restored onto ${vdb} (raw), the domain's file in libvirt; the task named ${decoy} (raw)`,
        ],
      },
    });
    expect(await readFile(vdb)).toEqual(RESTORED);
    expect(await readFile(vm.disks[0]?.path as string, 'utf8')).toBe('old-0');
    expect(await readFile(decoy, 'utf8')).toBe('not a disk of this VM');
    expect((await readdir(work)).filter((f) => f.startsWith('decoy'))).toEqual(['decoy.raw']);
  }, 60_000);

  // A copy of /etc/passwd stands in for it: code that follows the task's path (as the code before
  // this fix did) overwrites the file the task names, and a failing test must not break the host.
  async function passwdStandIn(): Promise<string> {
    await mkdir(join(work, 'etc'), { recursive: true });
    const path = join(work, 'etc', 'passwd');
    await writeFile(path, await readFile('/etc/passwd'));
    return path;
  }

  it('a task naming a passwd file as the disk never writes it', async () => {
    const passwd = await passwdStandIn();
    const before = await readFile(passwd);
    const answer = await restoreNaming(passwd, 21);
    expect(answer).toMatchObject({
      call: 'success',
      output: { disks: [{ id: 1, path: vm.disks[1]?.path }] },
    });
    expect(await readFile(passwd)).toEqual(before);
    expect(await readdir(join(work, 'etc'))).toEqual(['passwd']);
    expect(await readFile(vm.disks[1]?.path as string)).toEqual(RESTORED);
  }, 60_000);

  it('refuses a disk id the domain does not have, before any download', async () => {
    await reset();
    restoredFiles.length = 0;
    const r = await runner();
    try {
      await r.executor.accept(task(22, 5, await passwdStandIn()));
      await until(() => r.tokens.answers().length === 1, 30_000);
      expect(r.tokens.answers()[0]).toMatchObject({
        call: 'failure',
        error: 'ValidationError',
        cause: `in-place restore: domain "${vm.domain}" has no disk 5 (it has 0 vda, 1 vdb)`,
      });
      expect(restoredFiles).toEqual([]);
    } finally {
      await r.remove();
    }
  }, 60_000);
});
