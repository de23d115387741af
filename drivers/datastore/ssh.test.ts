import { describe, expect, it } from 'vitest';
import { joinCommand, parseServer, parseSftpDf, sshFailure, sshOptions } from './ssh.ts';

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
    expect(parseSftpDf(out)).toEqual({
      totalBytes: 264212084 * 1024,
      usedBytes: 23813424 * 1024,
      freeBytes: 82577488 * 1024,
    });
  });
});
