/**
 * The audit trail through the API handler on DynamoDB Local: every change (refusals included)
 * is recorded once with its user, route pattern, object, status and source address, reads and
 * anonymous requests are not, nothing secret is stored, only admins read it, the queries
 * filter and paginate, and a failed write never fails the change it records.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { queryAudit } from '#functions/repo/audit.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';

const ROOT = 'root-token-0123456789abcdef';
const root = { token: ROOT };
let db: DynamoDbLocal;

interface Entry {
  user: string;
  method: string;
  route: string;
  object?: string;
  status: number;
  error?: string;
  sourceIp?: string;
  at: string;
}

/** Every record of `?query` (all pages), as root. */
async function trail(query = ''): Promise<Entry[]> {
  const all: Entry[] = [];
  let next: string | undefined;
  do {
    const sep = query ? '&' : '';
    const url = `/audit?${query}${next ? `${sep}next=${encodeURIComponent(next)}` : ''}`;
    const res = await call('GET', url, root);
    expect(res.status, res.raw).toBe(200);
    all.push(...res.body.items);
    next = res.body.next;
  } while (next);
  return all;
}

let alice = '';
let bob = '';
let aliceTokenId = '';

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  db = await startDynamoDbLocal();
  await seedUser('root', ROOT, 'admin', 'admin');
  alice = (await call('POST', '/users', { ...root, body: { name: 'alice' } })).body.token;
  bob = (await call('POST', '/users', { ...root, body: { name: 'bob' } })).body.token;
  // Changes as two users: alice makes a token; bob tries to revoke it and to make himself admin.
  const made = await call('POST', '/tokens', { token: alice, body: { name: 'ci' } });
  expect(made.status).toBe(201);
  aliceTokenId = made.body.id;
  expect((await call('DELETE', `/tokens/${aliceTokenId}`, { token: bob })).status).toBe(403);
  expect((await call('PATCH', '/users/bob', { token: bob, body: { admin: true } })).status).toBe(403);
  // Reads: not recorded.
  expect((await call('GET', '/users/alice', { token: alice })).status).toBe(200);
  expect((await call('GET', '/tokens', { token: bob })).status).toBe(200);
}, 120_000);
afterAll(async () => {
  await db?.stop();
});

describe('audit trail', () => {
  it('records each change with its user, route, object, outcome and source address; not reads', async () => {
    const entries = await trail();
    // Newest first; root's GET /audit calls are reads: not there.
    expect(entries.map((e) => [e.user, e.method, e.route, e.object, e.status, e.error])).toEqual([
      ['bob', 'PATCH', 'PATCH /users/{name}', 'user/bob', 403, 'Forbidden'],
      ['bob', 'DELETE', 'DELETE /tokens/{tokenId}', `token/${aliceTokenId}`, 403, 'Forbidden'],
      ['alice', 'POST', 'POST /tokens', `token/${aliceTokenId}`, 201, undefined],
      ['root', 'POST', 'POST /users', 'user/bob', 201, undefined],
      ['root', 'POST', 'POST /users', 'user/alice', 201, undefined],
    ]);
    for (const e of entries) {
      expect(e.sourceIp).toBe('127.0.0.1');
      expect(Date.parse(e.at)).toBeGreaterThan(Date.now() - 120_000);
    }
  });

  it('filters by user, by object, by both and by time', async () => {
    expect((await trail('user=alice')).map((e) => e.route)).toEqual(['POST /tokens']);
    expect((await trail('user=bob')).map((e) => e.route)).toEqual([
      'PATCH /users/{name}',
      'DELETE /tokens/{tokenId}',
    ]);
    expect((await trail(`object=token/${aliceTokenId}`)).map((e) => [e.user, e.status])).toEqual([
      ['bob', 403],
      ['alice', 201],
    ]);
    expect((await trail(`object=token/${aliceTokenId}&user=alice`)).map((e) => e.user)).toEqual(['alice']);
    expect(await trail('object=vm/63')).toEqual([]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(await trail(`since=${encodeURIComponent(future)}`)).toEqual([]);
    expect(await trail(`user=alice&since=${encodeURIComponent(future)}`)).toEqual([]);
  });

  it('paginates: limit=1 pages through every record once, newest first', async () => {
    const pages = await trail('limit=1');
    expect(pages).toEqual(await trail());
    const byUser = await trail('user=bob&limit=1');
    expect(byUser.map((e) => e.route)).toEqual(['PATCH /users/{name}', 'DELETE /tokens/{tokenId}']);
  });

  it('stores no token, hash, body or query value; a record expires after 400 days', async () => {
    const { items } = await queryAudit({ limit: 100 });
    expect(items.length).toBeGreaterThan(0);
    const stored = JSON.stringify(items);
    expect(stored).not.toContain(alice);
    expect(stored).not.toContain(bob);
    expect(stored).not.toMatch(/[0-9a-f]{64}/);
    expect(stored).not.toContain('"ci"');
    expect(stored).not.toContain('"admin"');
    for (const item of items) {
      expect(item.expiresAt - Date.parse(item.at) / 1000).toBeCloseTo(400 * 86_400, -1);
    }
  });

  it('is for admins only: 403 to a user, 401 to nobody; neither is recorded as a change', async () => {
    const before = (await trail()).length;
    const refused = await call('GET', '/audit', { token: alice });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: 'Forbidden', message: 'only admins may read the audit trail' });
    expect((await call('GET', '/audit')).status).toBe(401);
    // An anonymous change attempt (401) is not recorded: anyone could fill the table with them.
    expect((await call('POST', '/users', { body: { name: 'mallory' } })).status).toBe(401);
    expect((await call('POST', '/users', { token: 'lb_not-a-token', body: { name: 'm2' } })).status).toBe(
      401,
    );
    expect((await trail()).length).toBe(before);
  });

  it('answers 400 naming the parameter for a bad filter or cursor', async () => {
    for (const [query, field] of [
      ['object=vm', 'object'],
      ['object=planet/3', 'object'],
      ['since=yesterday', 'since'],
      ['limit=0', 'limit'],
      ['next=bm90LWEtY3Vyc29y', 'next'],
      ['colour=red', 'colour'],
    ] as const) {
      const res = await call('GET', `/audit?${query}`, root);
      expect(res.status, query).toBe(400);
      expect(res.body.message, query).toMatch(new RegExp(field));
    }
  });

  it('a failed audit write is logged with the whole record and never fails the change', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const table = process.env.TABLE_AUDIT;
    process.env.TABLE_AUDIT = 'lifeboat-no-such-table';
    try {
      const res = await call('POST', '/groups', { ...root, body: { name: 'web' } });
      expect(res.status).toBe(201);
      const lines = errors.mock.calls.map((c) => JSON.parse(String(c[0])));
      const line = lines.find((l) => l.message === 'audit record not written');
      expect(line?.audit).toMatchObject({
        user: 'root',
        route: 'POST /groups',
        object: 'group/web',
        status: 201,
      });
    } finally {
      process.env.TABLE_AUDIT = table;
      errors.mockRestore();
    }
    expect((await call('GET', '/groups/web', root)).status).toBe(200);
  });
});
