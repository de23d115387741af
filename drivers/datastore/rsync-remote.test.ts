import { describe, expect, it } from 'vitest';
import { parseListing, RsyncRemote, SAFE_RECEIVE_ARGS } from './rsync-remote.ts';

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
  it('receives with the fixed safe options after RSYNC_ARGS, whatever RSYNC_ARGS asks for', () => {
    const remote = new RsyncRemote(target({ RSYNC_HOST: 'bk', RSYNC_ARGS: '-aSlDogHAX -l -D --hard-links' }));
    const args = remote.receiveArgs();
    expect(args.slice(0, 4)).toEqual(['-aSlDogHAX', '-l', '-D', '--hard-links']);
    // rsync lets a later option win: the safe ones come last.
    expect(args.slice(4)).toEqual([...SAFE_RECEIVE_ARGS]);
    for (const option of ['--no-links', '--no-devices', '--no-specials', '--no-owner', '--no-group']) {
      expect(SAFE_RECEIVE_ARGS).toContain(option);
    }
    expect(SAFE_RECEIVE_ARGS).toContain('--chmod=D0700,F0600');
    // Long forms that would re-enable them are not RSYNC_ARGS options at all.
    for (const bad of ['--links', '--devices', '--specials', '--owner', '--copy-links', '--super']) {
      expect(() => new RsyncRemote(target({ RSYNC_HOST: 'bk', RSYNC_ARGS: `-aS ${bad}` }))).toThrow(
        /not allowed/,
      );
    }
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
      { isDir: true, isFile: false, size: 4096, mtime: '2026/11/26 16:20:03', name: '.' },
      { isDir: false, isFile: true, size: 1048576, mtime: '2026/11/26 16:20:03', name: 'disk.0.raw' },
      { isDir: true, isFile: false, size: 4096, mtime: '2026/11/26 16:20:03', name: '3f2a' },
    ]);
  });
});
