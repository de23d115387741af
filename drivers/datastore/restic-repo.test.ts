import { describe, expect, it } from 'vitest';
import { ExecError } from '../exec.ts';
import { ResticRepo, repoArgs } from './restic-repo.ts';

const target = (attributes: Record<string, string>) => ({
  id: 100,
  attributes,
  secrets: { RESTIC_PASSWORD: 'pw' },
});

describe('repoArgs', () => {
  it('uses a local path under BASE_PATH without an sftp server', () => {
    const { location, args } = repoArgs(target({ BASE_PATH: '/srv/b', RESTIC_COMPRESSION: 'max' }), 7);
    expect(location).toBe('/srv/b/7');
    expect(args).toEqual(['-r', '/srv/b/7', '--compression', 'max']);
  });
  it('builds sftp with ONE sftp.command option, connections and bandwidth limits', () => {
    const { location, args } = repoArgs(
      target({
        RESTIC_SFTP_SERVER: 'bk:2222',
        RESTIC_SFTP_USER: 'lb',
        RESTIC_CONNECTIONS: '3',
        RESTIC_BWLIMIT: '1000',
      }),
      7,
    );
    expect(location).toBe('sftp:lb@bk:/var/lib/lifeboat/backups/7');
    const command = args[args.indexOf('-o') + 1];
    expect(command).toMatch(
      /^sftp\.command=ssh (-F \S+ )?-p 2222 -l lb -o BatchMode=yes -o ConnectTimeout=20 bk -s sftp$/,
    );
    expect(args).toContain('sftp.connections=3');
    expect(args.join(' ')).toContain('--limit-upload 1000 --limit-download 1000');
  });
});

describe('ResticRepo', () => {
  it('wraps restic in nice and ionice, and passes the password only as a file', async () => {
    await ResticRepo.use(target({ RESTIC_NICE: '10', RESTIC_IONICE: '7' }), 1, async (repo) => {
      const command = repo.command(['snapshots']);
      expect([command.file, ...command.args.slice(0, 5)]).toEqual([
        'nice',
        '-n',
        '10',
        'ionice',
        '-c2',
        '-n',
      ]);
      expect(command.args).not.toContain('pw');
      expect(command.env?.RESTIC_PASSWORD).toBe('');
      expect(command.env?.RESTIC_PASSWORD_FILE).toMatch(/lifeboat-restic-.*\/password$/);
    });
  });
  it('maps restic failures to typed errors', async () => {
    await ResticRepo.use(target({}), 7, async (repo) => {
      const fail = (stderr: string) => repo.typed(new ExecError('restic', 1, undefined, stderr));
      expect(fail('Fatal: wrong password or no key found')).toMatchObject({
        name: 'DatastoreAuthFailed',
        message: 'wrong RESTIC_PASSWORD for datastore 100',
      });
      expect(
        fail('Fatal: unable to create lock in backend: repository is already locked by PID 1'),
      ).toMatchObject({
        name: 'DatastoreLocked',
      });
      expect(
        fail('Fatal: unable to open config file: stat /x/config: no such file or directory'),
      ).toMatchObject({
        name: 'BackupNotFound',
        repositoryMissing: true,
      });
      expect(
        fail('ssh: connect to host b port 22: No route to host\nFatal: unable to start the sftp session'),
      ).toMatchObject({
        name: 'DatastoreUnreachable',
      });
      expect(fail('Fatal: something else')).toMatchObject({ name: 'ExecError' });
    });
  });
});
