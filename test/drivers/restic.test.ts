import { createHash, randomBytes } from 'node:crypto';
import {
  cp,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatastoreTarget } from '#drivers/datastore/driver.ts';
import { resticDriver } from '#drivers/datastore/restic-driver.ts';
import { ResticRepo, snapshotName } from '#drivers/datastore/restic-repo.ts';
import { type Command, watchProcessGroups } from '#drivers/exec.ts';
import { freePort, type Sshd, startSshd } from '../helpers/sshd.ts';
import { type ConformanceTarget, datastoreConformance } from './datastore.conformance.ts';
import { catalogConformance } from './datastore-catalog.conformance.ts';

const PASSWORD = 'conformance-secret-Zq7!x';

async function resticTarget(sftp: boolean): Promise<ConformanceTarget> {
  const base = await mkdtemp(join(tmpdir(), 'lifeboat-restic-store-'));
  const sshd = sftp ? await startSshd() : undefined;
  if (sshd) process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
  const server: Record<string, string> = sshd
    ? { RESTIC_SFTP_SERVER: `${sshd.host}:${sshd.port}`, RESTIC_SFTP_USER: 'root' }
    : {};
  const target = (attributes: Record<string, string> = {}, secret = PASSWORD): DatastoreTarget => ({
    id: 100,
    attributes: { BASE_PATH: base, ...server, ...attributes },
    secrets: { RESTIC_PASSWORD: secret },
  });
  const closed = await freePort();
  return {
    driver: resticDriver,
    target: (attributes) => target(attributes),
    slowAttributes: { RESTIC_BWLIMIT: '64' },
    wrongSecret: () => target({}, 'not-the-password'),
    secret: PASSWORD,
    unreachable: sshd ? () => target({ RESTIC_SFTP_SERVER: `127.0.0.1:${closed}` }) : undefined,
    streamsNbd: true,
    // `lifeboat-hash-`: the tee and openssl that hash each disk as it streams (stream-hash.ts).
    processMarkers: [base, 'lifeboat-hash-', ...(sshd ? [sshd.configPath] : [])],
    // The repository (local, or the sftp server's folder) is on this machine: damage every data
    // pack written since the backup started (its disk is fresh random bytes: no other backup's).
    damage: async ({ vmId, since }) => {
      const data = join(base, String(vmId), 'data');
      const packs = (await readdir(data, { recursive: true })).map((p) => join(data, p));
      let damaged = 0;
      for (const pack of packs) {
        const info = await stat(pack);
        if (!info.isFile() || info.mtimeMs < since - 1000 || info.size < 2048) continue;
        const handle = await open(pack, 'r+');
        await handle.write(Buffer.alloc(16, 0x5a), 0, 16, 1024);
        await handle.close();
        damaged++;
      }
      if (damaged === 0) throw new Error(`no pack of VM ${vmId} written since the backup started`);
    },
    interrupt: ({ vmId, backupId }) =>
      ResticRepo.use(target(), vmId, async (repo) => {
        const [template] = await repo
          .snapshots([`backup:${backupId}`, 'lifeboat'])
          .then((all) => all.filter((s) => snapshotName(s) === 'vm.xml'));
        if (!template) throw new Error(`backup ${backupId} of VM ${vmId} has no template snapshot`);
        await repo.run(['forget', template.id]);
      }),
    async stop() {
      await sshd?.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}

datastoreConformance('restic, local repository', () => resticTarget(false));
datastoreConformance('restic, sftp repository', () => resticTarget(true), { transportOnly: true });
catalogConformance('restic, local repository', () => resticTarget(false));
catalogConformance('restic, sftp repository', () => resticTarget(true));

describe("restic: a backup job's repository", () => {
  let base: string;
  const job = (): DatastoreTarget => ({
    id: 101,
    attributes: { BASE_PATH: base },
    secrets: { RESTIC_PASSWORD: PASSWORD },
    jobId: 7,
  });
  /** A backup of one 1 MiB file of random bytes for `vmId` into `target`. */
  async function backupOf(target: DatastoreTarget, vmId: number) {
    const data = randomBytes(1024 * 1024);
    const path = join(base, `src-${vmId}-${data.readUInt32BE(0)}.raw`);
    await writeFile(path, data);
    const out = await resticDriver.backup(target, {
      vmId,
      imageId: vmId * 10,
      files: [{ name: 'disk.0.raw', source: { kind: 'file', path } }],
      template: `<domain><name>vm-${vmId}</name></domain>`,
    });
    return { backupId: out.backupId, data };
  }
  async function restored(target: DatastoreTarget, vmId: number, backupId: string): Promise<Buffer> {
    const toDir = await mkdtemp(join(base, 'restore-'));
    const [file] = await resticDriver.restore(target, { vmId, backupId, files: ['disk.0.raw'], toDir });
    return readFile(file?.path as string);
  }
  const snapshotCount = (vmId: number) =>
    ResticRepo.use(job(), vmId, async (repo) => (await repo.snapshots(['lifeboat', `vm:${vmId}`])).length);

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-restic-job-'));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('keeps the backups of every VM of the job in one repository, each restored byte for byte', async () => {
    const one = await backupOf(job(), 1);
    const two = await backupOf(job(), 2);
    expect((await readdir(base)).filter((f) => !f.startsWith('src-')).sort()).toEqual(['job-7']);
    expect((await restored(job(), 1, one.backupId)).equals(one.data)).toBe(true);
    expect((await restored(job(), 2, two.backupId)).equals(two.data)).toBe(true);
    // Outside the job the VM's own repository is used: the job's backups are not there.
    const own: DatastoreTarget = { ...job(), jobId: undefined };
    await expect(restored(own, 1, one.backupId)).rejects.toThrow(/holds no backups of VM 1/);

    // Removing VM 1's backup leaves VM 2's whole.
    await resticDriver.rm(job(), { vmId: 1, backupId: one.backupId });
    await expect(restored(job(), 1, one.backupId)).rejects.toThrow(/not in datastore 101/);
    expect((await restored(job(), 2, two.backupId)).equals(two.data)).toBe(true);
  });

  it("reconcile of one VM leaves another VM's backup in progress alone", async () => {
    // An interrupted (or still running) backup of VM 3: a disk snapshot, no template yet.
    await ResticRepo.use(job(), 3, (repo) =>
      repo.run(
        ['backup', '--stdin', '--stdin-filename', 'disk.0.raw', '--tag', 'lifeboat,vm:3,image:30,backup:b3'],
        {
          input: 'partial',
        },
      ),
    );
    expect(await snapshotCount(3)).toBe(1);
    await resticDriver.reconcile(job(), { vmId: 2 });
    expect(await snapshotCount(3)).toBe(1);
    expect(await snapshotCount(2)).toBe(2);
    await resticDriver.reconcile(job(), { vmId: 3 });
    expect(await snapshotCount(3)).toBe(0);
  });

  it("catalog lists the job repository's backups under the job, each with its own VM", async () => {
    const four = await backupOf(job(), 4);
    // The target's jobId plays no part: catalog walks every repository under BASE_PATH.
    const catalog = await resticDriver.catalog({ ...job(), jobId: undefined });
    const found = catalog.find((b) => b.backupId === four.backupId);
    expect(found).toMatchObject({
      vmId: 4,
      imageId: 40,
      jobId: 7,
      files: [{ name: 'disk.0.raw', size: 1024 * 1024, sha256: null }],
      template: '<domain><name>vm-4</name></domain>',
    });
    expect(catalog.every((b) => b.jobId === 7)).toBe(true);
  });

  it("catalog names a VM repository's backups by its folder, the one a restore opens", async () => {
    const own = (): DatastoreTarget => ({ ...job(), jobId: undefined });
    // VM 9's repository, moved to folder 8 (its snapshots still tagged vm:9); a copy of it under
    // `008` and under a number past 2^53: names of no folder a driver makes.
    const nine = await backupOf(own(), 9);
    await rename(join(base, '9'), join(base, '8'));
    await cp(join(base, '8'), join(base, '008'), { recursive: true });
    await cp(join(base, '8'), join(base, '99999999999999999999'), { recursive: true });
    const catalog = (await resticDriver.catalog(own())).filter((b) => b.jobId === null);
    expect(catalog.map((b) => [b.vmId, b.backupId])).toEqual([[8, nine.backupId]]);
    expect((await restored(own(), 8, nine.backupId)).equals(nine.data)).toBe(true);
  });
});

describe('restic: a file source not yet stable (ready)', () => {
  let base: string;
  const target = (): DatastoreTarget => ({
    id: 102,
    attributes: { BASE_PATH: base },
    secrets: { RESTIC_PASSWORD: PASSWORD },
  });
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-restic-ready-'));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('stores the bytes the file holds when ready resolves, not those it held at the start', async () => {
    const path = join(base, 'disk.raw');
    await writeFile(path, 'written before the snapshot');
    let open!: () => void;
    const ready = new Promise<void>((resolve) => {
      open = resolve;
    });
    const backup = resticDriver.backup(target(), {
      vmId: 5,
      imageId: 50,
      files: [{ name: 'disk.0.raw', source: { kind: 'file', path, ready } }],
      template: '<domain><name>vm-5</name></domain>',
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const data = randomBytes(2 * 1024 * 1024);
    await writeFile(path, data);
    open();
    const out = await backup;
    expect(out.files).toEqual([
      { name: 'disk.0.raw', size: data.length, sha256: createHash('sha256').update(data).digest('hex') },
    ]);
    const toDir = await mkdtemp(join(base, 'restore-'));
    const [file] = await resticDriver.restore(target(), {
      vmId: 5,
      backupId: out.backupId,
      files: ['disk.0.raw'],
      toDir,
    });
    expect((await readFile(file?.path as string)).equals(data)).toBe(true);
  });

  it('a rejected ready fails the backup with its reason and stores nothing', async () => {
    const path = join(base, 'disk-2.raw');
    await writeFile(path, randomBytes(1024));
    const backup = resticDriver.backup(target(), {
      vmId: 6,
      imageId: 60,
      files: [
        {
          name: 'disk.0.raw',
          source: { kind: 'file', path, ready: Promise.reject(new Error('no snapshot')) },
        },
      ],
      template: '<domain><name>vm-6</name></domain>',
    });
    await expect(backup).rejects.toThrow('no snapshot');
    const count = await ResticRepo.use(
      target(),
      6,
      async (repo) => (await repo.snapshots(['lifeboat'])).length,
    );
    expect(count).toBe(0);
  });
});

describe('restic over sftp: monitor', () => {
  let base: string;
  let sshd: Sshd;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-restic-monitor-'));
    sshd = await startSshd();
    process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
  });
  afterAll(async () => {
    await sshd.stop();
    await rm(base, { recursive: true, force: true });
  });

  it("measures the space and the repositories' bytes in one sftp session", async () => {
    // Two repositories' files (a VM's, a job's) and what is not the datastore's.
    const files: [string, number][] = [
      ['5/config', 155],
      ['5/keys/k1', 450],
      ['5/data/ab/ab01', 4000],
      ['job-2/snapshots/s1', 300],
      ['job-2/data/cd/cd01', 7000],
      ['lost+found/x/y', 90_000],
      ['notes/a/b', 80_000],
    ];
    for (const [name, size] of files) {
      await mkdir(join(base, name, '..'), { recursive: true });
      await writeFile(join(base, name), randomBytes(size));
    }
    const tools: string[] = [];
    const stop = watchProcessGroups({
      onSpawn: (_pgid, command: Command) => tools.push(command.file),
      onExit() {},
    });
    const capacity = await resticDriver
      .monitor({
        id: 103,
        attributes: {
          BASE_PATH: base,
          RESTIC_SFTP_SERVER: `${sshd.host}:${sshd.port}`,
          RESTIC_SFTP_USER: 'root',
        },
        secrets: { RESTIC_PASSWORD: PASSWORD },
      })
      .finally(stop);
    expect(tools).toEqual(['sftp']);
    expect(capacity.usedBytes).toBe(155 + 450 + 4000 + 300 + 7000);
    const fs = await statfs(base);
    expect(capacity.totalBytes).toBe(fs.blocks * fs.bsize);
  });
});

describe('restic: processes per operation (each one a key derivation, most of a second)', () => {
  let base: string;
  const target = (): DatastoreTarget => ({
    id: 104,
    attributes: { BASE_PATH: base },
    secrets: { RESTIC_PASSWORD: PASSWORD },
  });
  const SUBCOMMANDS = new Set(['init', 'backup', 'snapshots', 'find', 'check', 'dump', 'forget', 'unlock']);
  /** The restic subcommands `fn` starts, in order. */
  async function resticCalls(fn: () => Promise<unknown>): Promise<string[]> {
    const calls: string[] = [];
    const stop = watchProcessGroups({
      onSpawn: (_pgid, command: Command) => {
        if (command.file !== 'restic') return;
        calls.push(command.args.find((a) => SUBCOMMANDS.has(a)) ?? '?');
      },
      onExit() {},
    });
    await fn().finally(stop);
    return calls;
  }
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-restic-calls-'));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('backup, verify, restore and stat: one listing (find) of the backup each, no second one', async () => {
    const data = randomBytes(300 * 1024 + 7);
    const path = join(base, 'src.raw');
    await writeFile(path, data);
    let out: Awaited<ReturnType<typeof resticDriver.backup>> | undefined;
    const backupCalls = await resticCalls(async () => {
      out = await resticDriver.backup(target(), {
        vmId: 6,
        imageId: 60,
        files: [{ name: 'disk.0.raw', source: { kind: 'file', path } }],
        template: '<domain><name>vm-6</name></domain>',
      });
    });
    // The disk stored, then the template's restic started (it opens the repository while the
    // disk reads back, and gets the template once verified): nothing listed or read twice.
    expect(backupCalls).toEqual(['init', 'backup', 'backup', 'dump']);
    const ref = { vmId: 6, backupId: out?.backupId ?? '' };
    const sums = { 'disk.0.raw': out?.files[0]?.sha256 ?? '' };

    // The listing gives each file's snapshot and size at once; then the structure, then each
    // file (the disk and the template) read back.
    expect(await resticCalls(() => resticDriver.verify(target(), { ...ref, sums }))).toEqual([
      'find',
      'check',
      'dump',
      'dump',
    ]);
    const toDir = join(base, 'restore');
    const restoreCalls = await resticCalls(() =>
      resticDriver.restore(target(), { ...ref, files: ['disk.0.raw'], toDir }),
    );
    expect(restoreCalls).toEqual(['find', 'dump']);
    expect((await readFile(join(toDir, 'disk.0.raw'))).equals(data)).toBe(true);
    let stat: { name: string; size: number }[] = [];
    expect(
      await resticCalls(async () => {
        stat = await resticDriver.stat(target(), ref);
      }),
    ).toEqual(['find']);
    expect(stat).toEqual([{ name: 'disk.0.raw', size: data.length }]);
  });
});

describe('restic: the disks of one backup read back at once', () => {
  let base: string;
  const target = (): DatastoreTarget => ({
    id: 105,
    attributes: { BASE_PATH: base },
    secrets: { RESTIC_PASSWORD: PASSWORD },
  });
  const NAMES = ['disk.0.raw', 'disk.1.raw', 'disk.2.raw'];
  /** Each `restic dump` this starts: when it started and when it ended, in event order. */
  async function dumpEvents(fn: () => Promise<unknown>): Promise<{ events: string[]; error?: Error }> {
    const events: string[] = [];
    const dumps = new Set<number>();
    const stop = watchProcessGroups({
      onSpawn: (pgid, command: Command) => {
        if (command.file !== 'restic' || !command.args.includes('dump')) return;
        dumps.add(pgid);
        events.push('start');
      },
      onExit: (pgid) => {
        if (dumps.delete(pgid)) events.push('end');
      },
    });
    try {
      await fn();
      return { events };
    } catch (error) {
      return { events: [...events], error: error as Error };
    } finally {
      stop();
    }
  }
  let ref: { vmId: number; backupId: string };
  let sums: Record<string, string>;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-restic-readback-'));
    const files: { name: string; source: { kind: 'file'; path: string } }[] = [];
    for (const [i, name] of NAMES.entries()) {
      const path = join(base, `src-${i}.raw`);
      await writeFile(path, randomBytes(200 * 1024 + i));
      files.push({ name, source: { kind: 'file', path } });
    }
    let events: string[] = [];
    let out: Awaited<ReturnType<typeof resticDriver.backup>> | undefined;
    ({ events } = await dumpEvents(async () => {
      out = await resticDriver.backup(target(), {
        vmId: 7,
        imageId: 70,
        files,
        template: '<domain><name>vm-7</name></domain>',
      });
    }));
    // The three disks' dumps all started before the first ended (one after another, each
    // would end before the next starts).
    expect(events.slice(0, 3)).toEqual(['start', 'start', 'start']);
    expect(events.filter((e) => e === 'end')).toHaveLength(3);
    ref = { vmId: 7, backupId: out?.backupId ?? '' };
    sums = Object.fromEntries((out?.files ?? []).map((f) => [f.name, f.sha256 ?? '']));
    expect(Object.keys(sums)).toEqual(NAMES);
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('a verify job reads every file back at once, and wrong sums among them fail naming the first file', async () => {
    const ok = await dumpEvents(() => resticDriver.verify(target(), { ...ref, sums }));
    expect(ok.error).toBeUndefined();
    // Three disks and the template, at most four at once: all started before any ended.
    expect(ok.events.slice(0, 4)).toEqual(['start', 'start', 'start', 'start']);

    // Two wrong sums: the first in the files' order is the one named, whichever dump ends first.
    const wrong = { ...sums, 'disk.1.raw': '0'.repeat(64), 'disk.2.raw': '0'.repeat(64) };
    const bad = await dumpEvents(() => resticDriver.verify(target(), { ...ref, sums: wrong }));
    expect(bad.error?.message).toMatch(
      /disk\.1\.raw of backup .* reads back with sha256 [0-9a-f]{64}, not the 0{64} sent/,
    );
    expect(bad.error?.message).not.toContain('disk.2.raw');
    // Every dump started had ended when the verify answered: none still holds the repository,
    // whose exclusive lock the next verify's `check` takes.
    expect(bad.events.filter((e) => e === 'start').length).toBe(bad.events.filter((e) => e === 'end').length);
    await expect(resticDriver.verify(target(), { ...ref, sums })).resolves.toBeUndefined();
  });
});
