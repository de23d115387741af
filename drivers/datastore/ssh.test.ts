import { describe, expect, it } from 'vitest';
import { watchProcessGroups } from '../exec.ts';
import { isRepositoryFolder } from './layout.ts';
import {
  joinCommand,
  measureRemote,
  parsePosixDf,
  parseServer,
  parseSftpDf,
  sshDfSpace,
  sshFailure,
  sshOptions,
  sumListing,
} from './ssh.ts';

describe('parseServer', () => {
  it('splits host, host:port and bracketed IPv6', () => {
    expect(parseServer('backup-1')).toEqual({ host: 'backup-1' });
    expect(parseServer('backup-1:2222', 'lb')).toEqual({ host: 'backup-1', port: 2222, user: 'lb' });
    expect(parseServer('[::1]:22')).toEqual({ host: '::1', port: 22 });
  });
  it('rejects a value that could smuggle an option', () => {
    expect(() => parseServer('-oProxyCommand')).toThrow(/not a host/);
    expect(() => parseServer('a b')).toThrow(/not a host/);
  });
});

describe('sshOptions', () => {
  it('uses LIFEBOAT_SSH_CONFIG, the port and the user, and never prompts', () => {
    const args = sshOptions({ host: 'h', port: 2222, user: 'root' }, { LIFEBOAT_SSH_CONFIG: '/etc/lb/ssh' });
    expect(args).toEqual([
      '-F',
      '/etc/lb/ssh',
      '-p',
      '2222',
      '-l',
      'root',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=20',
    ]);
    expect(sshOptions({ host: 'h' }, {})).not.toContain('-F');
  });
});

describe('joinCommand', () => {
  it('quotes words with spaces in double quotes, which restic 0.14 and rsync both split back', () => {
    expect(joinCommand(['ssh', '-F', '/tmp/my dir/cfg', 'h'])).toBe('ssh -F "/tmp/my dir/cfg" h');
  });
  it('refuses what neither splitter can carry', () => {
    expect(() => joinCommand(['a"b c'])).toThrow(/cannot pass/);
    expect(() => joinCommand(['a\\b'])).toThrow(/cannot pass/);
  });
});

describe('sshFailure', () => {
  it('maps a refused connection to DatastoreUnreachable and a refused key to DatastoreAuthFailed', () => {
    const down = sshFailure(
      'ssh: connect to host 10.0.0.9 port 22: Connection refused\n',
      'datastore 100',
      null,
    );
    expect(down).toMatchObject({ name: 'DatastoreUnreachable' });
    expect(down?.message).toBe(
      'datastore 100 is unreachable: ssh: connect to host 10.0.0.9 port 22: Connection refused',
    );
    expect(sshFailure('root@h: Permission denied (publickey).', 'datastore 1', null)).toMatchObject({
      name: 'DatastoreAuthFailed',
    });
  });
  it('leaves a local file permission error alone', () => {
    expect(
      sshFailure('rsync: mkstemp "/x" failed: Permission denied (13)', 'datastore 1', null),
    ).toBeUndefined();
  });
});

describe('parseSftpDf', () => {
  it('reads sftp df output in KiB', () => {
    const out =
      'sftp> -df /srv\n        Size         Used        Avail       (Root)    %Capacity\n   264212084     23813424     82577488     96398660           9%\n';
    // FREE is what the backup user may write (Avail), not Size - Used (root's reserve).
    expect(parseSftpDf(out)).toEqual({ totalBytes: 264212084 * 1024, freeBytes: 82577488 * 1024 });
  });
});

describe('parsePosixDf', () => {
  it('reads df -Pk output in KiB, a device name with spaces included', () => {
    const out =
      'Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/loop7          95088    55208     32704      63% /srv/backups\n';
    expect(parsePosixDf(out)).toEqual({ totalBytes: 95088 * 1024, freeBytes: 32704 * 1024 });
    expect(parsePosixDf(out.replace('/dev/loop7', 'my share'))).toEqual({
      totalBytes: 95088 * 1024,
      freeBytes: 32704 * 1024,
    });
  });

  it('throws on output without a data row (never a 0 that reads as full)', () => {
    expect(() => parsePosixDf('df: /x: No such file or directory\n')).toThrow(/no df table/);
  });
});

describe('sumListing', () => {
  const sftp = /^-\S{9}\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+\S+\s+(.+)$/;
  it("sums the files of the repositories' folders only (<vmid>, job-<id>), not folders or strangers", () => {
    const listing = [
      'sftp> -ls -ln /srv/b/*/data/*/*',
      '-rw-r--r--    ? root     root         1000 Dec  6 12:26 /srv/b/1/data/ab/abc',
      '-rw-r--r--    ? root     root         2000 Dec  6 12:26 /srv/b/job-2/data/cd/cde',
      'drwxr-xr-x    ? root     root         4096 Dec  6 12:26 /srv/b/1/data/ef',
      '-rw-r--r--    ? root     root       500000 Dec  6 12:26 /srv/b/lost+found/x/y',
      '-rw-r--r--    ? root     root        70000 Dec  6 12:26 /srv/b/notes.txt',
      '-rw-r--r--    ? root     root           10 Dec  6 12:26 /srv/b/1/config',
    ].join('\n');
    expect(sumListing(listing, '/srv/b', isRepositoryFolder, sftp)).toBe(3010);
  });

  it('reads rsync --list-only lines, relative to the base', () => {
    const rsync = /^-\S{9}\s+(\d+)\s+\S+\s+\S+\s+(.+)$/;
    const listing = [
      'drwxr-xr-x          4,096 2026/12/06 12:26:00 .',
      '-rw-r--r--     1048576 2026/12/06 12:26:00 63/9f2c/disk.0.raw',
      '-rw-r--r--         123 2026/12/06 12:26:00 63/9f2c/vm.xml',
      '-rw-r--r--         999 2026/12/06 12:26:00 stray.img',
    ].join('\n');
    expect(sumListing(listing, '/srv/b', isRepositoryFolder, rsync)).toBe(1048576 + 123);
  });
});

describe('figures from an untrusted server', () => {
  // 2^53 KiB and more: no exact number of bytes, never passed on rounded (or as Infinity).
  const huge = '9'.repeat(20);
  it('a df figure no exact number holds throws (the measure is unknown, not a wrong number)', () => {
    const sftp = `        Size         Used        Avail       (Root)    %Capacity\n   ${huge}     1     ${huge}     1           9%\n`;
    expect(() => parseSftpDf(sftp)).toThrow(/not a byte count/);
    const posix = `Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/x ${huge} 1 ${huge} 1% /srv\n`;
    expect(() => parsePosixDf(posix)).toThrow(/not a byte count/);
    // 2^42 KiB is still exact in bytes.
    const fine = posix.replaceAll(huge, String(2 ** 42));
    expect(parsePosixDf(fine)).toEqual({ totalBytes: 2 ** 52, freeBytes: 2 ** 52 });
  });

  it('a listing whose sizes, or their sum, no exact number holds throws', () => {
    const rsync = /^-\S{9}\s+(\d+)\s+\S+\s+\S+\s+(.+)$/;
    const line = (size: string | number) => `-rw-r--r-- ${size} 2026/12/06 12:26:00 63/9f2c/disk.0.raw`;
    expect(() => sumListing(line('9'.repeat(400)), '/b', isRepositoryFolder, rsync)).toThrow(
      /not a byte count/,
    );
    const half = 2 ** 52;
    expect(() => sumListing([line(half), line(half)].join('\n'), '/b', isRepositoryFolder, rsync)).toThrow(
      /no exact byte count/,
    );
    expect(sumListing([line(half), line(half - 1)].join('\n'), '/b', isRepositoryFolder, rsync)).toBe(
      2 ** 53 - 1,
    );
  });
});

describe('paths on their way to sftp and the remote shell', () => {
  it('are refused unless a BASE_PATH could be one, before any process starts', async () => {
    let spawned = 0;
    const stop = watchProcessGroups({ onSpawn: () => spawned++, onExit() {} });
    try {
      const server = { host: '127.0.0.1', port: 9 };
      for (const path of ['-oProxyCommand=x', '/srv/b;reboot', '/srv/b\nrm -r /srv', '/srv/my b', 'srv/b']) {
        await expect(measureRemote(server, path, 'datastore 1')).rejects.toMatchObject({
          name: 'ValidationError',
        });
        await expect(measureRemote(server, path, 'datastore 1', {}, () => true)).rejects.toThrow(
          /not a path a datastore may have/,
        );
        await expect(sshDfSpace(server, path, 'datastore 1')).rejects.toThrow(
          /not a path a datastore may have/,
        );
      }
    } finally {
      stop();
    }
    expect(spawned).toBe(0);
  });
});
