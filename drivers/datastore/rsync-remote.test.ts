import { describe, expect, it } from 'vitest';
import { parseListing, RsyncRemote } from './rsync-remote.ts';

const target = (attributes: Record<string, string>) => ({ id: 200, attributes, secrets: {} });

describe('RsyncRemote', () => {
  it('keeps RSYNC_ARGS to allow-listed options, defaulting to -aS', () => {
    expect(new RsyncRemote(target({ RSYNC_HOST: 'bk' })).userArgs).toEqual(['-aS']);
    expect(new RsyncRemote(target({ RSYNC_HOST: 'bk', RSYNC_ARGS: '-aS  --bwlimit=100' })).userArgs).toEqual([
      '-aS',
      '--bwlimit=100',
    ]);
    expect(() => new RsyncRemote(target({ RSYNC_HOST: 'bk', RSYNC_ARGS: '-e ssh' }))).toThrow(/RSYNC_ARGS/);
    expect(() => new RsyncRemote(target({ RSYNC_HOST: 'bk', RSYNC_ARGS: '--rsh=sh' }))).toThrow(/RSYNC_ARGS/);
  });
  it('puts the port in ssh, not in the remote spec', () => {
    expect(new RsyncRemote(target({ RSYNC_HOST: 'bk:2222' })).spec('/b/7')).toBe('bk:/b/7');
  });
});

describe('parseListing', () => {
  it('reads sizes with or without digit groups, and folders', () => {
    const out =
      'drwxr-xr-x          4,096 2026/11/26 16:20:03 .\n-rw-r--r--      1048576 2026/11/26 16:20:03 disk.0.raw\ndrwx------ 4096 2026/11/26 16:20:03 3f2a\n';
    expect(parseListing(out)).toEqual([
      { isDir: true, size: 4096, name: '.' },
      { isDir: false, size: 1048576, name: 'disk.0.raw' },
      { isDir: true, size: 4096, name: '3f2a' },
    ]);
  });
});
