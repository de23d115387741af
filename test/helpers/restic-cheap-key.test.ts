import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs fixture without types
import * as fixture from './restic-cheap-key.mjs';
import { shimScript } from './restic-shim.ts';

const { cheapenKey, irreducible, parseInit, poly1305, randomPolynomial, repositoryFolder } = fixture;

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

  it('the shim gives init to the fixture and everything else to restic', () => {
    const text = shimScript('/usr/bin/restic', '/usr/bin/node', '/x/restic-cheap-key.mjs');
    expect(text).toContain(`exec '/usr/bin/node' '/x/restic-cheap-key.mjs' '/usr/bin/restic' "$@"`);
    expect(text.trimEnd().split('\n').at(-1)).toBe(`exec '/usr/bin/restic' "$@"`);
  });

  it("tells irreducible polynomials as restic's chunker does", () => {
    // One a real `restic init` drew; small ones known irreducible, and products of them.
    expect(irreducible(0x3149a16c1b5c95n)).toBe(true);
    expect(irreducible(0b111n)).toBe(true); // x^2 + x + 1
    expect(irreducible(0b1011n)).toBe(true); // x^3 + x + 1
    expect(irreducible(0b100101n)).toBe(true); // x^5 + x^2 + 1
    expect(irreducible(0b10101n)).toBe(false); // x^4 + x^2 + 1 = (x^2 + x + 1)^2
    expect(irreducible(0b110001n)).toBe(false); // (x^2 + x + 1)(x^3 + x + 1)
    expect(irreducible((0x3149a16c1b5c95n << 1n) ^ 0x3149a16c1b5c95n)).toBe(false); // times (x + 1)
    const drawn = randomPolynomial() as bigint;
    expect(drawn >> 53n).toBe(1n);
    expect(drawn & 1n).toBe(1n);
    expect(irreducible(drawn)).toBe(true);
  });

  it('reads what init is asked for, and leaves to restic what it cannot do as restic would', async () => {
    const env = { RESTIC_PASSWORD: 'pw' };
    const sftp = [
      '-r',
      'sftp:root@127.0.0.1:/srv/7',
      '-o',
      'sftp.command=ssh -p 2222 -l root 127.0.0.1 -s sftp',
      'init',
    ];
    expect(parseInit(sftp, env)).toMatchObject({
      folder: '/srv/7',
      password: 'pw',
      ssh: ['ssh', '-p', '2222', '-l', 'root', '127.0.0.1', '-s', 'sftp'],
    });
    expect(parseInit(['-r', '/srv/7', 'init', '--repository-version', '2'], env)).toMatchObject({
      folder: '/srv/7',
    });
    expect(parseInit(['-r', '/srv/7', 'init', '--repository-version', '1'], env)).toMatchObject({
      fallback: 'version 1',
    });
    expect(parseInit(['-r', 'sftp:backup.example:/srv/7', 'init'], env)).toMatchObject({ remote: true });
    expect(parseInit(['-r', 's3:bucket/7', 'init'], env)).toMatchObject({ remote: true });
    expect(parseInit(['-r', '/srv/7', 'init'], {})).toMatchObject({ fallback: 'no password' });
  });

  it('creates a repository restic reads and writes: backup and restore byte for byte, the password and no other', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-cheap-init-'));
    try {
      const repo = join(dir, 'nested', 'repo');
      await writeFile(join(dir, 'pw'), 'pass word\n', { mode: 0o600 });
      await writeFile(join(dir, 'wrong'), 'other\n', { mode: 0o600 });
      const data = randomBytes(3 * 1024 * 1024);
      await writeFile(join(dir, 'disk.raw'), data);
      const script = fileURLToPath(new URL('./restic-cheap-key.mjs', import.meta.url));
      const init = () =>
        run(
          process.execPath,
          [script, '/usr/bin/restic', '-r', repo, '--password-file', join(dir, 'pw'), 'init'],
          {
            env: { ...process.env, RESTIC_PASSWORD_FILE: '' },
          },
        );
      const restic = (file: string, ...args: string[]) =>
        run('/usr/bin/restic', ['-r', repo, '--password-file', join(dir, file), ...args]);
      // Two at once, as two runners' first backups: one creates it, the other fails as restic's would.
      const both = await Promise.allSettled([init(), init()]);
      expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason.stderr).toMatch(/config file already exists/);
      expect(await readdir(join(repo, 'data'))).toHaveLength(256);
      expect((await readdir(dirname(repo))).sort()).toEqual(['repo']);

      const config = JSON.parse((await restic('pw', 'cat', 'config')).stdout);
      expect(config).toMatchObject({ version: 2, id: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(irreducible(BigInt(`0x${config.chunker_polynomial}`))).toBe(true);
      await restic('pw', 'backup', join(dir, 'disk.raw'), '-q');
      await restic('pw', 'restore', 'latest', '--target', join(dir, 'out'), '-q');
      expect((await readFile(join(dir, 'out', dir, 'disk.raw'))).equals(data)).toBe(true);
      await restic('pw', 'check', '--read-data', '-q');
      await expect(restic('wrong', 'snapshots')).rejects.toMatchObject({
        stderr: expect.stringMatching(/wrong password/),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
