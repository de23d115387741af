import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs fixture without types
import { cheapenKey, poly1305, repositoryFolder } from './restic-cheap-key.mjs';
import { shimScript } from './restic-shim.ts';

const run = promisify(execFile);

describe("the test suite's cheap restic keys", () => {
  it('computes Poly1305 as RFC 8439 2.5.2 does', () => {
    const key = Buffer.from('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b', 'hex');
    const tag = poly1305(Buffer.from('Cryptographic Forum Research Group'), key) as Buffer;
    expect(tag.toString('hex')).toBe('a8061dc1305136c6c22b8baf0c0127a9');
  });

  it("finds the repository's folder in a local or an sftp location", () => {
    expect(repositoryFolder('/srv/restic/7')).toBe('/srv/restic/7');
    expect(repositoryFolder('sftp:root@127.0.0.1:/srv/restic/7')).toBe('/srv/restic/7');
    expect(repositoryFolder('sftp:[::1]:/srv/restic/7')).toBe('/srv/restic/7');
  });

  it('rewrites a real repository key: restic opens it with the password, with no other, at N=1024', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-cheap-key-'));
    try {
      const repo = join(dir, 'repo');
      await writeFile(join(dir, 'pw'), 'pass word\n', { mode: 0o600 });
      await writeFile(join(dir, 'wrong'), 'other\n', { mode: 0o600 });
      const restic = (file: string, ...args: string[]) =>
        run('restic', ['-r', repo, '--password-file', join(dir, file), ...args], {
          env: { ...process.env, PATH: '/usr/bin:/bin' },
        });
      await restic('pw', 'init', '--repository-version', '2');
      const { stdout: before } = await restic('pw', 'cat', 'config');
      cheapenKey(repo, 'pass word');
      const keys = await readdir(join(repo, 'keys'));
      expect(keys).toHaveLength(1);
      expect(JSON.parse(await readFile(join(repo, 'keys', keys[0] as string), 'utf8'))).toMatchObject({
        kdf: 'scrypt',
        N: 1024,
        r: 8,
        p: 1,
      });
      expect((await restic('pw', 'cat', 'config')).stdout).toBe(before);
      await expect(restic('wrong', 'cat', 'config')).rejects.toMatchObject({
        stderr: expect.stringMatching(/wrong password/),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('the shim runs restic, and the rewrite only after an init that succeeded', () => {
    const text = shimScript('/usr/bin/restic', '/usr/bin/node', '/x/restic-cheap-key.mjs');
    expect(text).toContain(`'/usr/bin/restic' "$@" || exit $?`);
    expect(text.trimEnd().split('\n').at(-1)).toBe(`exec '/usr/bin/restic' "$@"`);
  });
});
