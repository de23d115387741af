/**
 * `lifeboat audit list` against a fake API: the filters it sends, every page followed, the
 * table and the `--json` array, bad filters refused before any request (exit 2), and an API
 * refusal (403) as `Forbidden: ...`, exit 1.
 */
import { describe, expect, it } from 'vitest';
import { type Reply, useFakeApi } from './fake-api.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const DELETE = {
  at: '2026-12-06T06:01:00.000Z',
  user: 'bob',
  method: 'DELETE',
  route: 'DELETE /vms/{id}',
  object: 'vm/63',
  status: 403,
  error: 'Forbidden',
  sourceIp: '10.0.0.7',
  requestId: 'r2',
};
const BACKUP = {
  at: '2026-12-06T06:00:00.000Z',
  user: 'alice',
  method: 'POST',
  route: 'POST /vms/{id}/backup',
  object: 'vm/63',
  status: 202,
  sourceIp: '10.0.0.5',
  requestId: 'r1',
};

/** Two pages: the first points at the second with `next`. */
const TWO_PAGES: Reply = (request) =>
  request.query.next === 'page-2'
    ? { status: 200, body: { items: [BACKUP] } }
    : { status: 200, body: { items: [DELETE], next: 'page-2' } };

describe('lifeboat audit list', () => {
  it('sends the filters, follows every page and prints a table, newest first', async () => {
    const env = await serve({ 'GET /audit': TWO_PAGES });
    const result = await runCli(
      ['audit', 'list', '--object', 'vm/63', '--user', 'bob', '--since', '2026-12-01'],
      { env },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(api.requests.map((r) => r.query)).toEqual([
      { object: 'vm/63', user: 'bob', since: '2026-12-01T00:00:00.000Z', limit: '500' },
      { object: 'vm/63', user: 'bob', since: '2026-12-01T00:00:00.000Z', limit: '500', next: 'page-2' },
    ]);
    expect(result.stdout.split('\n')).toEqual([
      'TIME                      USER   ROUTE                  OBJECT  STATUS         SOURCE',
      '2026-12-06T06:01:00.000Z  bob    DELETE /vms/{id}       vm/63   403 Forbidden  10.0.0.7',
      '2026-12-06T06:00:00.000Z  alice  POST /vms/{id}/backup  vm/63   202            10.0.0.5',
    ]);
  });

  it('--json prints one array of every record; --limit stops early', async () => {
    const env = await serve({ 'GET /audit': TWO_PAGES });
    const all = await runCli(['--json', 'audit', 'list'], { env });
    expect(all.exitCode).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual([DELETE, BACKUP]);
    expect(api.requests[0]?.query).toEqual({ limit: '500' });
    const one = await runCli(['audit', 'list', '--limit', '1', '--json'], { env });
    expect(JSON.parse(one.stdout)).toEqual([DELETE]);
    expect(api.requests.at(-1)?.query).toEqual({ limit: '1' });
  });

  it('says so when there is nothing', async () => {
    const env = await serve({ 'GET /audit': { status: 200, body: { items: [] } } });
    const result = await runCli(['audit', 'list', '--user', 'host:3'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('no audit records');
    expect(api.requests[0]?.query.user).toBe('host:3');
  });

  it.each([
    [['--object', 'vm'], /--object/],
    [['--object', 'planet/3'], /KIND\/ID/],
    [['--since', 'last tuesday'], /ISO-8601/],
    [['--user', 'a b'], /user name/],
    [['--limit', '0'], /positive/],
  ])('refuses %j before any request (exit 2)', async (args, message) => {
    const env = await serve({ 'GET /audit': TWO_PAGES });
    const result = await runCli(['audit', 'list', ...args], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(api.requests).toEqual([]);
  });

  it('a non-admin is refused: Forbidden on stderr, exit 1', async () => {
    const env = await serve({
      'GET /audit': {
        status: 403,
        body: { error: 'Forbidden', message: 'only admins may read the audit trail' },
      },
    });
    const result = await runCli(['audit', 'list'], { env });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe('lifeboat: Forbidden: only admins may read the audit trail');
    expect(result.stdout).toBe('');
  });
});
