/**
 * The token stays off command lines: `--token-file` (0600 only) and `LIFEBOAT_TOKEN` are the
 * quiet ways in, `--token` still works but warns on stderr, and no message, even with
 * LIFEBOAT_DEBUG=1, ever shows the token. (runCli's stderr has its final newline stripped.)
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Reply, useFakeApi } from './fake-api.ts';
import { VM } from './fixtures.ts';
import { runCli } from './run-cli.ts';

const TOKEN = 'tok-s3cr3t-0123456789abcdef';

const api = useFakeApi();

/** Starts the fake API and answers its endpoint alone: each test gives the token its own way. */
async function serve(routes: Record<string, Reply> = { 'GET /vms/3': { status: 200, body: VM } }) {
  return (await api.serve(routes)).LIFEBOAT_ENDPOINT;
}

/** A token file with `mode`, holding `content` (the token and a newline by default). */
function tokenFile(mode: number, content = `${TOKEN}\n`): string {
  const file = join(mkdtempSync(join(tmpdir(), 'lifeboat-token-')), 'token');
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

describe('--token-file', () => {
  it('reads the token from a 0600 file (trailing newline ignored), with no warning', async () => {
    const endpoint = await serve();
    const result = await runCli(['--token-file', tokenFile(0o600), '--json', 'vm', 'show', '3'], {
      env: { LIFEBOAT_ENDPOINT: endpoint },
    });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(VM);
    expect(result.stderr).toBe('');
    expect(api.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('wins over LIFEBOAT_TOKEN and endpoint.json', async () => {
    const endpoint = await serve();
    const result = await runCli(['vm', 'show', '3', '--token-file', tokenFile(0o400)], {
      env: { LIFEBOAT_ENDPOINT: endpoint, LIFEBOAT_TOKEN: 'env-token' },
    });
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it.each([
    ['0644', 0o644],
    ['0640', 0o640],
    ['0604', 0o604],
    ['0620', 0o620],
  ])('refuses a file open to other users (mode %s) before any request', async (shown, mode) => {
    const endpoint = await serve();
    const file = tokenFile(mode);
    const result = await runCli(['--token-file', file, 'vm', 'show', '3'], {
      env: { LIFEBOAT_ENDPOINT: endpoint },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe(
      `lifeboat: the token file ${file} is open to other users (mode ${shown}): run chmod 600 ${file}`,
    );
    expect(result.stdout).toBe('');
    expect(api.requests).toEqual([]);
  });

  it.each([
    ['a missing file', () => '/nonexistent/lifeboat-token', /cannot read the token file .*: no such file/],
    ['an empty file', () => tokenFile(0o600, '\n'), /the token file .* is empty/],
    ['a directory', () => mkdtempSync(join(tmpdir(), 'lifeboat-token-dir-')), /is a directory/],
    ['two lines', () => tokenFile(0o600, `${TOKEN}\nsecond-line\n`), /not a valid API token/],
  ])('is a one-line usage error for %s', async (_what, file, message) => {
    const endpoint = await serve();
    const result = await runCli(['--token-file', file(), 'vm', 'show', '3'], {
      env: { LIFEBOAT_ENDPOINT: endpoint },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).not.toContain(TOKEN);
    expect(api.requests).toEqual([]);
  });

  it('cannot be given with --token', async () => {
    const result = await runCli(['--token', TOKEN, '--token-file', tokenFile(0o600), 'vm', 'show', '3'], {
      env: { LIFEBOAT_ENDPOINT: await serve() },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('give --token or --token-file, not both');
    expect(api.requests).toEqual([]);
  });

  it('is in --help, with the warning about --token', async () => {
    const result = await runCli(['--help']);
    expect(result.stdout).toMatch(/--token-file <PATH>\s+read the API token from PATH/);
    expect(result.stdout).toMatch(/--token <TOKEN>\s+API token; shows in ps/);
  });
});

describe('--token', () => {
  it('still works, with one warning line on stderr and stdout left to --json', async () => {
    const endpoint = await serve();
    const result = await runCli(['vm', 'show', '3', '--json', '--token', TOKEN], {
      env: { LIFEBOAT_ENDPOINT: endpoint },
    });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(VM);
    expect(result.stderr).toBe(
      'lifeboat: warning: --token shows the token to every user of this machine (ps, shell history): ' +
        'use --token-file PATH or LIFEBOAT_TOKEN',
    );
    expect(api.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('LIFEBOAT_TOKEN does not warn', async () => {
    const endpoint = await serve();
    const result = await runCli(['vm', 'show', '3'], {
      env: { LIFEBOAT_ENDPOINT: endpoint, LIFEBOAT_TOKEN: TOKEN },
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
  });
});

describe('the token in messages', () => {
  const cases: [string, () => Promise<{ args: string[]; env: Record<string, string> }>][] = [
    [
      'a 401 answer',
      async () => ({
        args: ['vm', 'show', '3'],
        env: {
          LIFEBOAT_ENDPOINT: await serve({
            'GET /vms/3': { status: 401, body: { error: 'Unauthorized', message: 'unknown token' } },
          }),
        },
      }),
    ],
    [
      'a 500 answer that is not JSON',
      async () => ({
        args: ['vm', 'show', '3'],
        env: { LIFEBOAT_ENDPOINT: await serve({ 'GET /vms/3': { status: 500 } }) },
      }),
    ],
    [
      'no API there',
      async () => ({ args: ['vm', 'show', '3'], env: { LIFEBOAT_ENDPOINT: 'http://127.0.0.1:9' } }),
    ],
    ['a broken endpoint', async () => ({ args: ['vm', 'list'], env: { LIFEBOAT_ENDPOINT: 'not a url' } })],
    [
      'a bad argument',
      async () => ({ args: ['vm', 'show', 'x'], env: { LIFEBOAT_ENDPOINT: 'http://127.0.0.1:9' } }),
    ],
  ];

  it.each(cases)('never shows it, even with LIFEBOAT_DEBUG=1: %s', async (_what, setup) => {
    const { args, env } = await setup();
    for (const way of [
      { args, env: { ...env, LIFEBOAT_TOKEN: TOKEN } },
      { args: ['--token-file', tokenFile(0o600), ...args], env },
      { args: ['--token', TOKEN, ...args], env },
    ]) {
      const result = await runCli(way.args, { env: { ...way.env, LIFEBOAT_DEBUG: '1' } });
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).not.toContain(TOKEN);
      expect(result.stdout).not.toContain(TOKEN);
    }
  });

  it('a token with a space or a control character is refused without echoing it', async () => {
    for (const bad of [`${TOKEN} x`, `${TOKEN}\u0007`]) {
      const viaEnv = await runCli(['vm', 'list'], {
        env: { LIFEBOAT_ENDPOINT: 'http://127.0.0.1:9', LIFEBOAT_TOKEN: bad },
      });
      expect(viaEnv.exitCode).toBe(2);
      expect(viaEnv.stderr).toBe(
        'lifeboat: the token from LIFEBOAT_TOKEN is not a valid API token (one line of printable characters)',
      );
    }
  });

  it('a password in the endpoint URL is masked in messages', async () => {
    const result = await runCli(['vm', 'list'], {
      env: { LIFEBOAT_ENDPOINT: `http://user:${TOKEN}@127.0.0.1:9`, LIFEBOAT_TOKEN: 'x1' },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('http://user:***@127.0.0.1:9');
    expect(result.stderr).not.toContain(TOKEN);
  });
});
