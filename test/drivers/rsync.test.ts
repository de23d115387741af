import { createHash, randomBytes } from 'node:crypto';
import { chmod, cp, mkdtemp, open, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rsyncDriver } from '#drivers/datastore/rsync-driver.ts';
import { measureRemote } from '#drivers/datastore/ssh.ts';
import { type Command, watchProcessGroups } from '#drivers/exec.ts';
import { freePort, type Sshd, type SshdOptions, startSshd } from '../helpers/sshd.ts';
import { type ConformanceTarget, datastoreConformance } from './datastore.conformance.ts';
import { catalogConformance } from './datastore-catalog.conformance.ts';

async function rsyncTarget(): Promise<ConformanceTarget> {
  const base = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-store-'));
  const sshd = await startSshd();
  process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
  const closed = await freePort();
  const target = (attributes = {}) => ({
    id: 200,
    attributes: {
      BASE_PATH: base,
      RSYNC_HOST: `${sshd.host}:${sshd.port}`,
      RSYNC_USER: 'root',
      ...attributes,
    },
    secrets: {},
  });
  return {
    driver: rsyncDriver,
    target,
    slowAttributes: { RSYNC_ARGS: '-aS --bwlimit=256' },
    unreachable: () => target({ RSYNC_HOST: `127.0.0.1:${closed}` }),
    streamsNbd: false,
    processMarkers: [base, sshd.configPath],
    // The server's folder is on this machine: flip one byte of the stored file.
    damage: ({ vmId, backupId, file }) => flipByte(join(base, String(vmId), backupId, file), 1000),
    interrupt: ({ vmId, backupId }) => rm(join(base, String(vmId), backupId, '.complete')),
    async stop() {
      await sshd.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}

datastoreConformance('rsync over ssh', rsyncTarget);
catalogConformance('rsync over ssh', rsyncTarget);

describe('rsync: the capacity of a server without sftp', () => {
  let base: string;
  const servers: Sshd[] = [];
  const previousConfig = process.env.LIFEBOAT_SSH_CONFIG;
  async function serve(options: SshdOptions): Promise<Sshd> {
    const sshd = await startSshd(options);
    servers.push(sshd);
    process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
    return sshd;
  }
  /** The tools `fn` starts (file names, in order). */
  async function started(fn: () => Promise<unknown>): Promise<string[]> {
    const files: string[] = [];
    const stop = watchProcessGroups({
      onSpawn: (_pgid, command: Command) => files.push(command.file),
      onExit() {},
    });
    try {
      await fn();
    } finally {
      stop();
    }
    return files;
  }

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-nosftp-'));
  });
  afterAll(async () => {
    for (const sshd of servers) await sshd.stop();
    process.env.LIFEBOAT_SSH_CONFIG = previousConfig;
    await rm(base, { recursive: true, force: true });
  });

  it('measures with df over ssh, from the nearest existing parent of a BASE_PATH not made yet', async () => {
    const sshd = await serve({ sftp: false });
    const capacity = await rsyncDriver.monitor({
      id: 201,
      attributes: {
        BASE_PATH: `${base}/not/yet`,
        RSYNC_HOST: `${sshd.host}:${sshd.port}`,
        RSYNC_USER: 'root',
      },
      secrets: {},
    });
    // The server is this machine: its df sees the filesystem statfs sees here.
    const fs = await statfs(base);
    expect(capacity.totalBytes).toBe(fs.blocks * fs.bsize);
    expect(Math.abs((capacity.freeBytes as number) - fs.bavail * fs.bsize)).toBeLessThan(256 * 1024 * 1024);
    expect(capacity.usedBytes).toBe(0);
  });

  it('an account with neither sftp nor a shell: unknown, after one sftp and one ssh call', async () => {
    const sshd = await serve({ forceCommand: '/bin/false' });
    const server = { host: sshd.host, port: sshd.port, user: 'root' };
    let space: unknown;
    const tools = await started(async () => {
      space = (await measureRemote(server, `${base}/a/b/c`, 'datastore 202')).space;
    });
    expect(space).toBeNull();
    // Not one ssh call per parent folder: no shell is no shell for any of them.
    expect(tools).toEqual(['sftp', 'ssh']);
  });
});

describe('rsync: an rsync-only account (a forced command that runs rsync and nothing else)', () => {
  let base: string;
  let work: string;
  let sshd: Sshd;
  const previousConfig = process.env.LIFEBOAT_SSH_CONFIG;
  const target = () => ({
    id: 203,
    attributes: { BASE_PATH: base, RSYNC_HOST: `${sshd.host}:${sshd.port}`, RSYNC_USER: 'root' },
    secrets: {},
  });
  const sha256 = async (path: string) =>
    createHash('sha256')
      .update(await readFile(path))
      .digest('hex');

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-only-'));
    work = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-only-work-'));
    // What rrsync does, without its folder restriction: rsync's server side, nothing else.
    const wrapper = join(work, 'rsync-only.sh');
    await writeFile(
      wrapper,
      [
        '#!/bin/sh',
        'set -f',
        'case "$SSH_ORIGINAL_COMMAND" in',
        "  'rsync --server '*) exec $SSH_ORIGINAL_COMMAND ;;",
        'esac',
        'echo "this account runs rsync only" >&2',
        'exit 1',
        '',
      ].join('\n'),
    );
    await chmod(wrapper, 0o755);
    sshd = await startSshd({ forceCommand: wrapper });
    process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
    await writeFile(join(work, 'disk0.img'), randomBytes(2 * 1024 * 1024 + 3));
    await writeFile(join(work, 'disk1.img'), randomBytes(300 * 1024 + 5));
  });
  afterAll(async () => {
    await sshd?.stop();
    process.env.LIFEBOAT_SSH_CONFIG = previousConfig;
    await rm(base, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  const input = (vmId: number) => ({
    vmId,
    imageId: 70 + vmId,
    files: [
      { name: 'disk.0.raw', source: { kind: 'file' as const, path: join(work, 'disk0.img') } },
      { name: 'disk.1.qcow2', source: { kind: 'file' as const, path: join(work, 'disk1.img') } },
    ],
    template: '<domain type="kvm"><name>rsync-only</name></domain>\n',
  });

  it('a backup is verified by rsync --checksum on the server, records the sha256 sent, and restores byte for byte', async () => {
    const commands: Command[] = [];
    const stop = watchProcessGroups({
      onSpawn: (_pgid, command: Command) => commands.push(command),
      onExit() {},
    });
    let out: Awaited<ReturnType<typeof rsyncDriver.backup>>;
    try {
      out = await rsyncDriver.backup(target(), input(1));
    } finally {
      stop();
    }
    expect(out.verifiedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(out.files.map((f) => [f.name, f.sha256])).toEqual([
      ['disk.0.raw', await sha256(join(work, 'disk0.img'))],
      ['disk.1.qcow2', await sha256(join(work, 'disk1.img'))],
    ]);
    // The server refused the hash command; rsync compared each stored disk with its source.
    const compared = commands.filter((c) => c.file === 'rsync' && c.args.includes('--checksum'));
    expect(compared.map((c) => c.args.at(-1))).toEqual([
      expect.stringMatching(new RegExp(`/1/${out.backupId}/disk\\.0\\.raw$`)),
      expect.stringMatching(new RegExp(`/1/${out.backupId}/disk\\.1\\.qcow2$`)),
    ]);
    const toDir = join(work, 'restored');
    const restored = await rsyncDriver.restore(target(), {
      vmId: 1,
      backupId: out.backupId,
      files: ['disk.0.raw', 'disk.1.qcow2'],
      toDir,
    });
    expect(await sha256(restored[0]?.path as string)).toBe(out.files[0]?.sha256);
    expect(await sha256(restored[1]?.path as string)).toBe(out.files[1]?.sha256);
    // Image verify later, on the same server: each file fetched and hashed on the runner's host.
    const sums = Object.fromEntries(out.files.map((f) => [f.name, f.sha256 as string]));
    await expect(
      rsyncDriver.verify(target(), { vmId: 1, backupId: out.backupId, sums }),
    ).resolves.toBeUndefined();
  });

  it('a byte flipped in a stored disk before it is read back fails the backup naming that disk', async () => {
    let backupId = '';
    const error = await rsyncDriver
      .backup(target(), input(2), {
        afterStore: async (stored) => {
          backupId = stored.backupId;
          await flipByte(join(base, '2', stored.backupId, 'disk.0.raw'), 1000);
        },
      })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(error).toMatchObject({ name: 'BackupVerifyFailed' });
    expect(error?.message).toContain('disk.0.raw');
    expect(error?.message).not.toContain('disk.1.qcow2');
    expect(error?.message).toContain('damaged');
    await expect(rsyncDriver.stat(target(), { vmId: 2, backupId })).rejects.toMatchObject({
      name: 'BackupNotFound',
    });
  });

  it("catalog reads such a server, a backup once, under the folder a restore opens (not a copy's `006`)", async () => {
    const out = await rsyncDriver.backup(target(), input(6));
    await cp(join(base, '6'), join(base, '006'), { recursive: true });
    const six = (await rsyncDriver.catalog(target())).filter((b) => b.backupId === out.backupId);
    expect(six).toEqual([
      expect.objectContaining({
        vmId: 6,
        imageId: 76,
        files: expect.arrayContaining(
          out.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 })),
        ),
        template: input(6).template,
      }),
    ]);
  });

  it('verify refuses a SHA256SUMS that names no plain file before the name reaches a path or a command', async () => {
    const out = await rsyncDriver.backup(target(), input(3));
    // The server's file, rewritten by whoever holds the server: a name out of the backup folder.
    const sumsPath = join(base, '3', out.backupId, 'SHA256SUMS');
    await writeFile(sumsPath, `${await readFile(sumsPath, 'utf8')}${'0'.repeat(64)}  ../../escape\n`);
    const error = await rsyncDriver
      .verify(target(), { vmId: 3, backupId: out.backupId })
      .catch((e: unknown) => e as Error);
    expect(error).toMatchObject({ name: 'BackupVerifyFailed' });
    expect((error as Error).message).toContain('"../../escape" of backup');
    expect((error as Error).message).toContain('is no file name a backup holds');
  });
});

describe('rsync: a server with a shell but no sha256 tool (neither openssl nor sha256sum)', () => {
  let base: string;
  let work: string;
  let sshd: Sshd;
  const previousConfig = process.env.LIFEBOAT_SSH_CONFIG;
  const target = () => ({
    id: 204,
    attributes: { BASE_PATH: base, RSYNC_HOST: `${sshd.host}:${sshd.port}`, RSYNC_USER: 'root' },
    secrets: {},
  });
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-nohash-'));
    work = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-nohash-work-'));
    // A shell whose PATH has no hashing tool: the shell's own "not found", exit 127.
    const wrapper = join(work, 'no-hash.sh');
    await writeFile(
      wrapper,
      [
        '#!/bin/sh',
        'case "$SSH_ORIGINAL_COMMAND" in',
        "  'openssl '*|'sha256sum '*) echo 'sh: 1: not found' >&2; exit 127 ;;",
        'esac',
        'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"',
        '',
      ].join('\n'),
    );
    await chmod(wrapper, 0o755);
    sshd = await startSshd({ forceCommand: wrapper });
    process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
  });
  afterAll(async () => {
    await sshd?.stop();
    process.env.LIFEBOAT_SSH_CONFIG = previousConfig;
    await rm(base, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('a backup is verified by rsync --checksum instead, and image verify fetches and hashes here', async () => {
    const path = join(work, 'disk0.img');
    const data = randomBytes(512 * 1024 + 1);
    await writeFile(path, data);
    const out = await rsyncDriver.backup(target(), {
      vmId: 1,
      imageId: 80,
      files: [{ name: 'disk.0.raw', source: { kind: 'file', path } }],
      template: '<domain type="kvm"><name>no-hash</name></domain>\n',
    });
    expect(out.verifiedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(out.files[0]?.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    const sums = { 'disk.0.raw': out.files[0]?.sha256 as string };
    await expect(
      rsyncDriver.verify(target(), { vmId: 1, backupId: out.backupId, sums }),
    ).resolves.toBeUndefined();
  });
});

/** Flips the bits of the byte at `offset` of `path`, in place. */
async function flipByte(path: string, offset: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    await handle.write(Buffer.from([(byte[0] as number) ^ 0xff]), 0, 1, offset);
  } finally {
    await handle.close();
  }
}
