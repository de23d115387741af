/**
 * The ONE conformance suite every disk driver passes (see the rules in `drivers/disk/driver.ts`),
 * on real libvirt VMs. A driver's test file calls {@link diskConformance} with a fixture that
 * makes VMs with its kind of disks and reads them back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupDisk, DiskDriver, PreparedFile } from '#drivers/disk/driver.ts';
import { run } from '#drivers/exec.ts';
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
}

const MiB = 1024 * 1024;
const A = 0xaa;
const B = 0xbb;

/** Reads a range of a prepared file, whatever its source kind. */
export async function readSource(file: PreparedFile, offset: number, length: number): Promise<Buffer> {
  if (file.source.kind === 'file') return readDisk(file.source.path, file.format, offset, length);
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-nbd-'));
  try {
    await run({ file: 'nbdcopy', args: [file.source.uri, join(dir, 'disk.raw')] });
    return await readDisk(join(dir, 'disk.raw'), 'raw', offset, length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

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
      expect(prepared.files.map((x) => x.name)).toEqual([expect.stringMatching(/^disk\.0\.(raw|qcow2)$/)]);
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

    it('a stopped VM cannot start while its disks are being read', async () => {
      const stopped = await f.createVm(`lb-conf-${name}-off`, false);
      try {
        const prepared = await f.driver.prepareBackup({ id: 2, domain: stopped.domain }, stopped.disks, {
          freeze: 'SUSPEND',
          workDir: join(stopped.dir, 'work'),
        });
        expect(prepared.state).toBe('POWEROFF');
        expect(prepared.files.map((x) => x.diskId)).toEqual([0, 1]);
        await expect(virsh('start', stopped.domain)).rejects.toThrow();
        await prepared.release();
        await virsh('start', stopped.domain);
        expect(await state(stopped.domain)).toBe('running');
      } finally {
        await stopped.destroy();
      }
    });

    it('restoreDisk turns a stored raw disk into a checked qcow2 one with the same content', async () => {
      const dir = join(running.dir, 'restore');
      await rm(dir, { recursive: true, force: true });
      await run({ file: 'mkdir', args: ['-p', dir] });
      const raw = join(dir, 'disk.0.raw');
      await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'raw', raw, '8M'] });
      await run({ file: 'qemu-io', args: ['-f', 'raw', '-c', `write -P ${B} 0 1M`, raw] });
      const restored = await f.driver.restoreDisk(raw, 'raw', join(dir, 'out', 'vda.qcow2'));
      expect(restored).toMatchObject({ format: 'qcow2', virtualSize: 8 * MiB });
      const info = JSON.parse(
        (await run({ file: 'qemu-img', args: ['info', '--output=json', restored.path] })).stdout,
      );
      expect(info.format).toBe('qcow2');
      expect(filledWith(await readDisk(restored.path, 'qcow2', 0, MiB), B)).toBe(true);
      await expect(f.driver.restoreDisk(raw, 'raw', restored.path)).rejects.toMatchObject({
        name: 'Conflict',
      });
    });
  });
}
