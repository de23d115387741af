import { mkdtemp, open, rm, statfs } from 'node:fs/promises';
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
