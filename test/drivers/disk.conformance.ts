/**
 * The ONE conformance suite every disk driver passes (see the rules in `drivers/disk/driver.ts`),
 * on real libvirt VMs. A driver's test file calls {@link diskConformance} with a fixture that
 * makes VMs with its kind of disks and reads them back; `disk-registry.test.ts` checks that every
 * driver of `drivers/disk/registry.ts` has one. Backups, chains, restores of every point and
 * in-place restores go through the DiskDriver interface only, as the runner uses it.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiskSource } from '#drivers/datastore/driver.ts';
import type {
  BackupDisk,
  DiskDriver,
  PointFile,
  PreparedBackup,
  PreparedFile,
} from '#drivers/disk/driver.ts';
import { run, runPipeline } from '#drivers/exec.ts';
import { blockList, ensureLibvirt, filledWith, guestWrite, readDisk, virsh } from '../helpers/libvirt.ts';

/** A VM made by the fixture: its domain, the task's view of its disks, and how to remove it. */
export interface FixtureVm {
  domain: string;
  /** Folder on the host for this VM's scratch (work folders), reachable by QEMU. */
  dir: string;
  disks: BackupDisk[];
  destroy(): Promise<void>;
}

/** What a driver's test file hands the suite. */
export interface DiskFixture {
  driver: DiskDriver;
  /** A fresh driver instance, as after a runner restart. */
  freshDriver(): DiskDriver;
  /** A VM with one 16 MiB disk (vda) and one 8 MiB disk (vdb). */
  createVm(name: string, running: boolean): Promise<FixtureVm>;
  /** Reads a range of a VM disk as the guest sees it; the VM must be shut off. */
  readVmDisk(vm: FixtureVm, disk: BackupDisk, offset: number, length: number): Promise<Buffer>;
  /**
   * The driver hands out immutable snapshots (rbd): a stopped VM may start while they are read,
   * instead of being kept from starting (file disks read in place).
   */
  immutableSources?: boolean;
}

const MiB = 1024 * 1024;
const A = 0xaa;
const B = 0xbb;

/** Reads a range of a prepared file, whatever its source kind (a stream's format is raw). */
export async function readSource(file: PreparedFile, offset: number, length: number): Promise<Buffer> {
  if (file.source.kind === 'file') return readDisk(file.source.path, file.format, offset, length);
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-nbd-'));
  try {
    await copySource(file.source, join(dir, 'disk.raw'));
    return await readDisk(join(dir, 'disk.raw'), 'raw', offset, length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes what a source yields into the file `path`, as a datastore would read it. */
export async function copySource(source: DiskSource, path: string): Promise<void> {
  if (source.kind === 'file') await run({ file: 'cp', args: ['--sparse=always', source.path, path] });
  else if (source.kind === 'nbd') await run({ file: 'nbdcopy', args: [source.uri, path] });
  else await runPipeline([source.command, { file: 'dd', args: [`of=${path}`, 'bs=1M', 'status=none'] }]);
}

/**
 * Stores every file of a prepared backup under `dir` by its name, as a datastore would (a file
 * copied sparse, an NBD export read whole with nbdcopy), then releases the backup.
 */
async function store(prepared: PreparedBackup, dir: string): Promise<PointFile[]> {
  await mkdir(dir, { recursive: true });
  const out: PointFile[] = [];
  try {
    for (const file of prepared.files) {
      const path = join(dir, file.name);
      await copySource(file.source, path);
      out.push({ path, name: file.name });
    }
  } finally {
    await prepared.release();
  }
  return out;
}

/** Copies of stored files (restorePoint may consume its inputs), in `dir`. */
async function copies(files: readonly PointFile[], dir: string): Promise<PointFile[]> {
  await mkdir(dir, { recursive: true });
  return Promise.all(
    files.map(async (f, i) => {
      const path = join(dir, `${i}-${f.name}`);
      await cp(f.path, path);
      return { path, name: f.name };
    }),
  );
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const state = async (domain: string) => (await virsh('domstate', domain)).trim();
const sources = async (domain: string) => Object.values(await blockList(domain)).sort();

/** Registers the suite for one driver. */
export function diskConformance(name: string, makeFixture: () => Promise<DiskFixture>): void {
  describe(`disk conformance: ${name}`, () => {
    let f: DiskFixture;
    let running: FixtureVm;
    let original: string[];
    let work = 0;
    const workDir = () => join(running.dir, `conformance-${++work}`);
    const vda = () => running.disks[0] as BackupDisk;

    beforeAll(async () => {
      await ensureLibvirt();
      f = await makeFixture();
      running = await f.createVm(`lb-conf-${name}`, true);
      original = await sources(running.domain);
    });
    afterAll(() => running?.destroy());

    it('hands out sources frozen at prepare time and gives the VM its own disks back with every write', async () => {
      await guestWrite(running.domain, 'vda', 0, MiB, A);
      const prepared = await f.driver.prepareBackup({ id: 1, domain: running.domain }, [vda()], {
        freeze: 'NONE',
        workDir: workDir(),
      });
      expect(prepared.files.map((x) => f.driver.describeArtifact(x.name))).toEqual([
        { diskId: 0, format: prepared.files[0]?.format, increment: null },
      ]);
      expect(prepared.files[0]?.virtualSize).toBe(16 * MiB);
      expect(prepared.template).toContain(`<name>${running.domain}</name>`);
      await guestWrite(running.domain, 'vda', 0, MiB, B);
      expect(filledWith(await readSource(prepared.files[0] as PreparedFile, 0, MiB), A)).toBe(true);
      await prepared.release();
      await prepared.release();
      expect(await sources(running.domain)).toEqual(original);
      expect(await state(running.domain)).toBe('running');
      await virsh('destroy', running.domain);
      expect(filledWith(await f.readVmDisk(running, vda(), 0, MiB), B)).toBe(true);
      await virsh('start', running.domain);
    });

    it('SUSPEND leaves the VM running', async () => {
      const prepared = await f.driver.prepareBackup({ id: 1, domain: running.domain }, [vda()], {
        freeze: 'SUSPEND',
        workDir: workDir(),
      });
      expect(await state(running.domain)).toBe('running');
      await prepared.release();
      expect(await state(running.domain)).toBe('running');
    });

    it('AGENT with no guest agent fails with FsFreezeFailed and leaves nothing behind', async () => {
      const dir = workDir();
      await expect(
        f.driver.prepareBackup({ id: 1, domain: running.domain }, [vda()], { freeze: 'AGENT', workDir: dir }),
      ).rejects.toMatchObject({
        name: 'FsFreezeFailed',
        message: `VM '${running.domain}' has no QEMU guest agent connected (FS_FREEZE=AGENT)`,
      });
      expect(await sources(running.domain)).toEqual(original);
      expect(await f.freshDriver().reconcile(dir, running.domain)).toEqual([]);
    });

    it('an unknown domain fails with DomainNotFound', async () => {
      await expect(
        f.driver.prepareBackup({ id: 1, domain: 'lb-no-such-vm' }, [vda()], {
          freeze: 'NONE',
          workDir: workDir(),
        }),
      ).rejects.toMatchObject({ name: 'DomainNotFound' });
    });

    it('reconcile by a fresh driver undoes a backup whose runner died, keeping guest writes', async () => {
      const dir = workDir();
      await f.driver.prepareBackup({ id: 1, domain: running.domain }, [vda()], {
        freeze: 'NONE',
        workDir: dir,
      });
      await guestWrite(running.domain, 'vda', MiB, MiB, A);
      const done = await f.freshDriver().reconcile(dir);
      expect(done.length).toBeGreaterThan(0);
      expect(await sources(running.domain)).toEqual(original);
      expect(await f.freshDriver().reconcile(dir)).toEqual([]);
      await virsh('destroy', running.domain);
      expect(filledWith(await f.readVmDisk(running, vda(), MiB, MiB), A)).toBe(true);
      await virsh('start', running.domain);
    });

    it('a stopped VM cannot start while its disks are being read (unless they are immutable snapshots)', async () => {
      const stopped = await f.createVm(`lb-conf-${name}-off`, false);
      try {
        const prepared = await f.driver.prepareBackup({ id: 2, domain: stopped.domain }, stopped.disks, {
          freeze: 'SUSPEND',
          workDir: join(stopped.dir, 'work'),
        });
        expect(prepared.state).toBe('POWEROFF');
        expect(prepared.files.map((x) => x.diskId)).toEqual([0, 1]);
        if (f.immutableSources) {
          await virsh('start', stopped.domain);
          await guestWrite(stopped.domain, 'vda', 0, MiB, A);
          expect(filledWith(await readSource(prepared.files[0] as PreparedFile, 0, MiB), 0)).toBe(true);
          await virsh('destroy', stopped.domain);
        } else {
          await expect(virsh('start', stopped.domain)).rejects.toThrow();
        }
        await prepared.release();
        await virsh('start', stopped.domain);
        expect(await state(stopped.domain)).toBe('running');
      } finally {
        await stopped.destroy();
      }
    });

    it('restorePoint turns a lone stored raw FULL into a checked qcow2 disk with the same content', async () => {
      const dir = join(running.dir, 'restore');
      await rm(dir, { recursive: true, force: true });
      await run({ file: 'mkdir', args: ['-p', dir] });
      // The driver's own name for a raw FULL of disk 0 (disk.0.raw for files, disk.0.rbd for rbd).
      const name = ['disk.0.raw', 'disk.0.rbd'].find((n) => {
        const artifact = f.driver.describeArtifact(n);
        return artifact?.format === 'raw' && artifact.increment === null;
      }) as string;
      const raw = join(dir, name);
      const write = async () => {
        await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'raw', raw, '8M'] });
        await run({ file: 'qemu-io', args: ['-f', 'raw', '-c', `write -P ${B} 0 1M`, raw] });
      };
      await write();
      const restored = await f.driver.restorePoint([{ name, path: raw }], join(dir, 'out', 'vda.qcow2'));
      expect(restored).toMatchObject({ format: 'qcow2', virtualSize: 8 * MiB });
      const info = JSON.parse(
        (await run({ file: 'qemu-img', args: ['info', '--output=json', restored.path] })).stdout,
      );
      expect(info.format).toBe('qcow2');
      expect(filledWith(await readDisk(restored.path, 'qcow2', 0, MiB), B)).toBe(true);
      await write(); // the input was consumed
      await expect(f.driver.restorePoint([{ name, path: raw }], restored.path)).rejects.toMatchObject({
        name: 'Conflict',
      });
    });

    describe('increment chains, restore of every point, in-place restore', () => {
      let vm: FixtureVm;
      let out: string;
      let vmSources: string[];
      const chain: PointFile[][] = []; // per point: the disk's stored file
      const POINTS = 3;
      const pattern = (i: number) => 0x10 + i;
      const disk = () => vm.disks[0] as BackupDisk;
      const backup = (n: number, parent: string | null) =>
        f.driver.prepareBackup({ id: 3, domain: vm.domain }, [disk()], {
          freeze: 'NONE',
          workDir: join(vm.dir, `chain-${n}-${parent ?? 'start'}`),
          increment: { checkpoint: `lifeboat-conf-${n}`, parent, index: n },
        });
      /** Disk of point `k` restored through restorePoint into a fresh file. */
      const restore = async (k: number, label: string) => {
        const files = await copies(chain.slice(0, k + 1).flat(), join(out, `in-${label}`));
        return f.driver.restorePoint(
          files,
          join(out, 'restored', `${label}-${f.driver.restoredFileName('vda')}`),
        );
      };

      beforeAll(async () => {
        vm = await f.createVm(`lb-conf-${name}-chain`, true);
        vmSources = await sources(vm.domain);
        out = await mkdtemp(join(vm.dir, 'points-'));
      });
      afterAll(() => vm?.destroy());

      it('a FULL then increments, each stored file named as the driver describes it', async () => {
        for (let n = 0; n < POINTS; n++) {
          await guestWrite(vm.domain, disk().target, n * MiB, MiB, pattern(n));
          const prepared = await backup(n, n === 0 ? null : `lifeboat-conf-${n - 1}`);
          expect(prepared.files.map((x) => x.diskId)).toEqual([0]);
          const file = prepared.files[0] as PreparedFile;
          expect(f.driver.describeArtifact(file.name)).toEqual({
            diskId: 0,
            format: file.format,
            increment: n === 0 ? null : n,
          });
          chain.push(await store(prepared, join(out, `point-${n}`)));
        }
        // Written after the last point: in no restored point.
        await guestWrite(vm.domain, disk().target, POINTS * MiB, MiB, 0x99);
        expect(await sources(vm.domain)).toEqual(vmSources);
      });

      it('restores every point exactly as the disk was then', async () => {
        for (let k = 0; k < POINTS; k++) {
          const restored = await restore(k, `p${k}`);
          expect(restored.virtualSize).toBe(16 * MiB);
          for (let n = 0; n <= POINTS; n++) {
            const bytes = await readDisk(restored.path, restored.format, n * MiB, MiB);
            expect(filledWith(bytes, n <= k ? pattern(n) : 0), `point ${k}, MiB ${n}`).toBe(true);
          }
          await expect(restore(k, `p${k}`)).rejects.toMatchObject({ name: 'Conflict' });
        }
      });

      it('a parent that cannot be followed is ChainBroken, and nothing is left behind', async () => {
        const before = await sources(vm.domain);
        const dir = join(vm.dir, 'chain-broken');
        await expect(
          f.driver.prepareBackup({ id: 3, domain: vm.domain }, [disk()], {
            freeze: 'NONE',
            workDir: dir,
            increment: { checkpoint: 'lifeboat-conf-9', parent: 'lifeboat-conf-never', index: 9 },
          }),
        ).rejects.toMatchObject({ name: 'ChainBroken' });
        expect(await sources(vm.domain)).toEqual(before);
        expect(await f.freshDriver().reconcile(dir, vm.domain)).toEqual([]);
        // What the runner then does: a FULL starting a new chain, which increments follow.
        const start = await f.driver.prepareBackup({ id: 3, domain: vm.domain }, [disk()], {
          freeze: 'NONE',
          workDir: join(vm.dir, 'chain-new-0'),
          increment: { checkpoint: 'lifeboat-conf-new-0', parent: null, index: 0 },
        });
        expect(f.driver.describeArtifact(start.files[0]?.name as string)?.increment).toBeNull();
        await store(start, join(out, 'new-0'));
        const next = await f.driver.prepareBackup({ id: 3, domain: vm.domain }, [disk()], {
          freeze: 'NONE',
          workDir: join(vm.dir, 'chain-new-1'),
          increment: { checkpoint: 'lifeboat-conf-new-1', parent: 'lifeboat-conf-new-0', index: 1 },
        });
        expect(f.driver.describeArtifact(next.files[0]?.name as string)?.increment).toBe(1);
        await next.release();
        expect(await sources(vm.domain)).toEqual(before);
      });

      it('in-place restore writes a point over the shut-off VM’s own disk, byte for byte, and leaves nothing else', async () => {
        await virsh('destroy', vm.domain);
        const before = await sources(vm.domain);
        const folder = (d: string) => readdir(d).then((names) => names.sort());
        const vmFiles = await folder(vm.dir);
        const workDir = join(out, 'in-place-work');
        await mkdir(workDir, { recursive: true });
        const replace = await f.driver.prepareInPlace(vm.domain, [0], { workDir });
        expect(replace.disks.map((d) => d.id)).toEqual([0]);
        let expected = '';
        const staged = await replace.stage(0, async (scratch) => {
          const restored = await f.driver.restorePoint(
            await copies(chain.slice(0, 2).flat(), join(out, 'in-inplace')),
            scratch,
          );
          // Read here: staging moves or converts the scratch file into the disk's own form.
          expected = sha(await readDisk(restored.path, restored.format, 0, 16 * MiB));
          return restored;
        });
        expect(staged.path).toBe(replace.disks[0]?.source);
        expect(await replace.commit()).toEqual(expect.any(Array));
        await replace.discard();
        expect(sha(await f.readVmDisk(vm, disk(), 0, 16 * MiB))).toBe(expected);
        for (let n = 0; n <= POINTS; n++) {
          const bytes = await f.readVmDisk(vm, disk(), n * MiB, MiB);
          expect(filledWith(bytes, n <= 1 ? pattern(n) : 0), `MiB ${n}`).toBe(true);
        }
        expect(await sources(vm.domain)).toEqual(before);
        expect(await folder(vm.dir)).toEqual(vmFiles);
        expect(await f.freshDriver().reconcile(workDir, vm.domain)).toEqual([]);
        await virsh('start', vm.domain);
        expect(await state(vm.domain)).toBe('running');
      });
    });
  });
}
