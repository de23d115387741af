/**
 * An rsync datastore's server is untrusted: what it serves under a backup's file names is
 * received as a plain 0600 file of ours, whatever RSYNC_ARGS asks for (`-l`, `-D`, `-o`, `-g`),
 * and a link, device or folder in a file's place is refused, never followed or created.
 */
import { existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatastoreTarget } from '#drivers/datastore/driver.ts';
import { rsyncDriver } from '#drivers/datastore/rsync-driver.ts';
import { run } from '#drivers/exec.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';

const VM = 7;
const BACKUP = '0123456789abcdef';
let sshd: Sshd;
let base: string;
let local: string;
let target: DatastoreTarget;

beforeAll(async () => {
  sshd = await startSshd();
  process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
  base = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-hostile-'));
  local = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-local-'));
  // A "complete" backup as a hostile server holds it.
  const dir = join(base, String(VM), BACKUP);
  await mkdir(join(dir, 'disk.3.raw'), { recursive: true });
  await writeFile(join(dir, 'disk.3.raw', 'inner'), 'x');
  await writeFile(join(dir, '.complete'), '{}\n');
  await writeFile(join(dir, 'disk.0.raw'), 'disk bytes');
  await chmod(join(dir, 'disk.0.raw'), 0o6777);
  await chown(join(dir, 'disk.0.raw'), 1234, 1234);
  await symlink('/etc/shadow', join(dir, 'disk.1.raw'));
  await run({ file: 'mknod', args: [join(dir, 'disk.2.raw'), 'c', '1', '3'] });
  target = {
    id: 200,
    attributes: {
      BASE_PATH: base,
      RSYNC_HOST: `${sshd.host}:${sshd.port}`,
      RSYNC_USER: 'root',
      // Everything the allow-list lets a datastore admin ask for that a receive must not do.
      RSYNC_ARGS: '-aSlDogHAX -l -D',
    },
    secrets: {},
  };
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
  for (const d of [base, local]) if (d) await rm(d, { recursive: true, force: true });
});

describe('rsync receive', () => {
  it('a file comes back 0600, owned by the runner, with no setuid bit', async () => {
    const toDir = join(local, 'r1');
    const [file] = await rsyncDriver.restore(target, {
      vmId: VM,
      backupId: BACKUP,
      files: ['disk.0.raw'],
      toDir,
    });
    const info = await lstat(file?.path as string);
    expect(info.isFile()).toBe(true);
    expect(info.mode & 0o7777).toBe(0o600);
    expect([info.uid, info.gid]).toEqual([process.getuid?.(), process.getgid?.()]);
    expect(await readFile(file?.path as string, 'utf8')).toBe('disk bytes');
  });

  it('a symlink, a device or a folder in a file’s place is refused, and nothing is created', async () => {
    for (const name of ['disk.1.raw', 'disk.2.raw', 'disk.3.raw']) {
      const toDir = join(local, name);
      await expect(
        rsyncDriver.restore(target, { vmId: VM, backupId: BACKUP, files: [name], toDir }),
      ).rejects.toMatchObject({
        name: 'BackupNotFound',
        // A device is not even listed as a file of the backup; a link or a folder is fetched, then refused.
        message: expect.stringMatching(
          name === 'disk.2.raw' ? /has no file disk.2.raw/ : /is not a regular file/,
        ),
      });
      expect(existsSync(join(toDir, name))).toBe(false);
    }
    // A download writes into the empty 0600 file the runner made for it (runner/confine.ts).
    const toPath = join(local, 'dl', 'shadow-copy');
    await mkdir(join(local, 'dl'), { recursive: true });
    await writeFile(toPath, '', { mode: 0o600 });
    await expect(
      rsyncDriver.download(target, { vmId: VM, backupId: BACKUP, file: 'disk.1.raw', toPath }),
    ).rejects.toMatchObject({ name: 'BackupNotFound' });
    const left = await lstat(toPath);
    expect(left.isFile() && !left.isSymbolicLink()).toBe(true);
    expect(left.size).toBe(0);
  });
});
