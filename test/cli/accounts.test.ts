/**
 * `lifeboat user`, `group`, `token` and `whoami` against a fake API: the requests they send, the token
 * printed once and alone on stdout, the `--json` shapes of CLI.md (`name`, `group`, `admin`,
 * `token`), and bad names or lifetimes refused before any request (exit 2).
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const ALICE = { name: 'alice', group: 'web', admin: false, createdAt: '2026-12-06T05:00:00.000Z' };
const SECRET = `lb_${'A'.repeat(43)}`;
const TOKEN = {
  id: '0123456789abcdef',
  user: 'alice',
  name: 'ci',
  createdAt: '2026-12-06T05:00:00.000Z',
  expiresAt: '2027-01-05T05:00:00.000Z',
  lastUsed: '2026-12-06T05:10:00.000Z',
  state: 'active',
};

describe('lifeboat user', () => {
  it('create sends the name, group and admin flag and prints only the token on stdout', async () => {
    const env = await serve({
      'POST /users': { status: 201, body: { ...ALICE, token: SECRET, tokenId: TOKEN.id } },
    });
    const result = await runCli(['user', 'create', 'alice', '--group', 'web'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(SECRET);
    expect(result.stderr).toContain('user alice (group web) created');
    expect(result.stderr).not.toContain(SECRET);
    expect(api.requests[0]?.body).toEqual({ name: 'alice', group: 'web', admin: false });

    const json = await runCli(['user', 'create', 'alice', '--admin', '--json'], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({
      name: 'alice',
      group: 'web',
      admin: false,
      token: SECRET,
    });
    expect(api.requests[1]?.body).toEqual({ name: 'alice', admin: true });
  });

  it('list, show, chgrp and delete', async () => {
    const env = await serve({
      'GET /users': { status: 200, body: { items: [ALICE] } },
      'GET /users/alice': { status: 200, body: ALICE },
      'PATCH /users/alice': { status: 200, body: { ...ALICE, group: 'db' } },
      'DELETE /users/alice': { status: 204 },
    });
    const list = await runCli(['user', 'list'], { env });
    expect(list.stdout.split('\n')).toEqual([
      expect.stringMatching(/^NAME\s+GROUP\s+ADMIN\s+CREATED$/),
      expect.stringMatching(/^alice\s+web\s+no\s+2026-12-06T05:00:00.000Z$/),
    ]);
    expect(JSON.parse((await runCli(['user', 'show', 'alice', '--json'], { env })).stdout)).toEqual(ALICE);
    expect((await runCli(['user', 'show', 'alice'], { env })).stdout).toMatch(
      /^NAME:\s+alice\nGROUP:\s+web\nADMIN:\s+no/,
    );
    expect((await runCli(['user', 'chgrp', 'alice', 'db'], { env })).stdout).toBe('user alice: group db');
    expect((await runCli(['user', 'delete', 'alice'], { env })).stdout).toBe('user alice deleted');
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /users',
      'GET /users/alice',
      'GET /users/alice',
      'PATCH /users/alice',
      'DELETE /users/alice',
    ]);
    expect(api.requests[3]?.body).toEqual({ group: 'db' });
  });

  it('a refusal of the API: 409 with what the user owns is exit 2, 403 is exit 1 "Forbidden: ..."', async () => {
    const env = await serve({
      'DELETE /users/alice': {
        status: 409,
        body: { error: 'Conflict', message: 'user alice owns VM 3: chown or delete them first' },
      },
      'GET /users': { status: 403, body: { error: 'Forbidden', message: 'only admins may list users' } },
    });
    const owned = await runCli(['user', 'delete', 'alice'], { env });
    expect(owned.exitCode).toBe(2);
    expect(owned.stderr).toBe('lifeboat: user alice owns VM 3: chown or delete them first');
    const denied = await runCli(['user', 'list'], { env });
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toBe('lifeboat: Forbidden: only admins may list users');
  });
});

describe('lifeboat group', () => {
  it('create, list, show and delete', async () => {
    const WEB = { name: 'web', builtin: false, createdAt: '2026-12-06T05:00:00.000Z', members: ['alice'] };
    const env = await serve({
      'POST /groups': { status: 201, body: { ...WEB, members: [] } },
      'GET /groups': {
        status: 200,
        body: { items: [{ name: 'admin', builtin: true, members: ['root'] }, WEB] },
      },
      'GET /groups/web': { status: 200, body: WEB },
      'DELETE /groups/web': { status: 204 },
    });
    expect((await runCli(['group', 'create', 'web'], { env })).stdout).toBe('group web created');
    expect(api.requests[0]?.body).toEqual({ name: 'web' });
    const list = await runCli(['group', 'list'], { env });
    expect(list.stdout.split('\n')).toEqual([
      expect.stringMatching(/^NAME\s+BUILTIN\s+USERS\s+CREATED$/),
      expect.stringMatching(/^admin\s+yes\s+1\s+-$/),
      expect.stringMatching(/^web\s+no\s+1\s+2026/),
    ]);
    expect((await runCli(['group', 'show', 'web'], { env })).stdout).toMatch(/USERS:\s+alice$/);
    expect((await runCli(['group', 'delete', 'web'], { env })).stdout).toBe('group web deleted');
  });
});

describe('lifeboat token', () => {
  it('create sends name, lifetime and user and prints the token once; list never shows one', async () => {
    const env = await serve({
      'POST /tokens': { status: 201, body: { ...TOKEN, token: SECRET } },
      'GET /tokens': {
        status: 200,
        body: {
          items: [
            TOKEN,
            {
              ...TOKEN,
              id: 'fedcba9876543210',
              name: '',
              state: 'revoked',
              expiresAt: undefined,
              lastUsed: undefined,
            },
          ],
        },
      },
    });
    const made = await runCli(['token', 'create', '--name', 'ci', '--expires', '30d', '--user', 'alice'], {
      env,
    });
    expect(made.exitCode).toBe(0);
    expect(made.stdout).toBe(SECRET);
    expect(made.stderr).toContain('token 0123456789abcdef for alice, valid until 2027-01-05T05:00:00.000Z');
    expect(api.requests[0]?.body).toEqual({ name: 'ci', expires: '30d', user: 'alice' });

    const list = await runCli(['token', 'list', '--user', 'alice'], { env });
    expect(api.requests[1]?.query).toEqual({ user: 'alice' });
    expect(list.stdout.split('\n')).toEqual([
      expect.stringMatching(/^ID\s+NAME\s+USER\s+STATE\s+CREATED\s+EXPIRES\s+LAST USED$/),
      expect.stringMatching(
        /^0123456789abcdef\s+ci\s+alice\s+active\s+\S+\s+2027-01-05T05:00:00.000Z\s+2026-12-06T05:10/,
      ),
      expect.stringMatching(/^fedcba9876543210\s+-\s+alice\s+revoked\s+\S+\s+never\s+-$/),
    ]);
    expect(list.stdout).not.toContain(SECRET);
  });

  it('revoke sends DELETE /tokens/ID', async () => {
    const env = await serve({
      'DELETE /tokens/0123456789abcdef': { status: 200, body: { ...TOKEN, state: 'revoked' } },
    });
    const result = await runCli(['token', 'revoke', '0123456789abcdef'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('token 0123456789abcdef (alice) revoked');
  });
});

describe('lifeboat whoami', () => {
  it('shows the token owner (GET /me) as columns, and the API answer with --json', async () => {
    const env = await serve({ 'GET /me': { status: 200, body: ALICE } });
    const result = await runCli(['whoami'], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      'NAME   GROUP  ADMIN  CREATED',
      'alice  web    no     2026-12-06T05:00:00.000Z',
    ]);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /me']);

    const json = await runCli(['whoami', '--json'], { env });
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(ALICE);
  });

  it('a refused token is exit 2 (a 4xx) with the API message, and --help lists whoami', async () => {
    const env = await serve({
      'GET /me': { status: 401, body: { error: 'Unauthorized', message: 'invalid token' } },
    });
    const result = await runCli(['whoami'], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim()).toMatch(/^lifeboat: .*invalid token$/);
    const help = await runCli(['--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/^ {2}whoami +who the API token belongs to/m);
  });
});

describe('bad input never reaches the API', () => {
  it.each([
    [['user', 'create', 'host:1'], /A name must be 1 to 64 of A-Z a-z 0-9/],
    [['user', 'create', 'a/b'], /'a\/b' is invalid for argument 'NAME'/],
    [['user', 'create', 'x'.repeat(65)], /is invalid for argument 'NAME'/],
    [['user', 'create', 'bob', '--group', 'enroll:x'], /option '--group <G>' argument 'enroll:x' is invalid/],
    [['user', 'chgrp', 'bob'], /missing required argument 'GROUP'/],
    [['group', 'create', 'a b'], /is invalid for argument 'NAME'/],
    [['token', 'create', '--expires', '30'], /with a unit s, m, h, d or w/],
    [['token', 'create', '--expires', '100y'], /with a unit/],
    [['token', 'revoke', '12'], /Expected a token id/],
    [['token', 'list', '--user', 'host:3'], /option '--user <NAME>' argument 'host:3' is invalid/],
    [['whoami', 'alice'], /too many arguments for 'whoami'/],
  ])('lifeboat %j exits 2 with one line', async (args, message) => {
    const env = await serve({});
    const result = await runCli(args, { env });
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(api.requests).toEqual([]);
  });
});
