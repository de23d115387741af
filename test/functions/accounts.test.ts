/**
 * Users, groups and API tokens through the API handler on DynamoDB Local: admins manage users
 * and groups, names are checked, deletes are refused while something depends on them, creates
 * race safely, and tokens expire and are revoked from the very next request. Also the tokens
 * that predate the tokens table (host credentials, a user record's own hash) and local mode's
 * admin token (local/admin.ts ensureAdmin).
 */
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '#functions/api/auth.ts';
import { groups } from '#functions/repo/groups.ts';
import { tokens, touchToken } from '#functions/repo/tokens.ts';
import { users } from '#functions/repo/users.ts';
import { ensureAdmin } from '#local/admin.ts';
import { localDynamoClient, localTableName } from '#local/dynamodb.ts';
import { dynamo } from '#platform/aws.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal, useLocalCredentials } from '../helpers/dynamodb-local.ts';

const ADMIN = 'admin-token-0123456789';
const admin = { token: ADMIN };
let db: DynamoDbLocal;
let ddb: ReturnType<typeof localDynamoClient>;

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  // Local mode's own table names, so ensureAdmin (which writes them) is tested on the same data.
  db = await startDynamoDbLocal({ localNames: true });
  ddb = localDynamoClient(db.endpoint, useLocalCredentials(), process.env.AWS_REGION);
  // An admin from before the tokens table: its hash on the user record.
  await seedUser('root', ADMIN, 'admin', 'admin');
});
afterAll(async () => {
  ddb?.destroy();
  await db?.stop();
});

/** Creates `name` as root; its first token. */
async function createUser(name: string, body: Record<string, unknown> = {}): Promise<string> {
  const res = await call('POST', '/users', { ...admin, body: { name, ...body } });
  expect(res.status, res.raw).toBe(201);
  return res.body.token;
}

/** User names in the table (host principals included), sorted. */
async function storedNames(): Promise<string[]> {
  return (await users.list()).map((u) => u.name).sort();
}

describe('users', () => {
  it('creates a user with a first token shown once, stored only hashed, that authenticates', async () => {
    const res = await call('POST', '/users', { ...admin, body: { name: 'alice' } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      name: 'alice',
      group: 'users',
      admin: false,
      createdAt: expect.any(String),
      token: expect.stringMatching(/^lb_[A-Za-z0-9_-]{43}$/),
      tokenId: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    const stored = JSON.stringify([await users.list(), await tokens.list()]);
    expect(stored).not.toContain(res.body.token);
    expect(stored).toContain(hashToken(res.body.token));

    const self = await call('GET', '/users/alice', { token: res.body.token });
    expect(self.status).toBe(200);
    expect(self.body).toEqual({ name: 'alice', group: 'users', admin: false, createdAt: res.body.createdAt });
  });

  it('--admin makes an admin in the admin group; list and show (admins) never show a hash', async () => {
    const token = await createUser('ops', { admin: true });
    const shown = await call('GET', '/users/ops', admin);
    expect(shown.body).toMatchObject({ name: 'ops', group: 'admin', admin: true });
    // The new admin may create users itself.
    expect((await call('POST', '/users', { token, body: { name: 'ops-made' } })).status).toBe(201);
    const listed = await call('GET', '/users', admin);
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((u: { name: string }) => u.name)).toEqual(
      expect.arrayContaining(['alice', 'ops', 'ops-made', 'root']),
    );
    expect(listed.raw).not.toMatch(/tokenHash|[0-9a-f]{64}/);
  });

  it('refuses bad names with 400 naming the field, and changes nothing', async () => {
    const before = await storedNames();
    const tokensBefore = (await tokens.list()).length;
    for (const name of ['host:1', 'enroll:kvm', 'a/b', '', '-dash', '.dot', 'x'.repeat(65), 'sp ace', 'é']) {
      const res = await call('POST', '/users', { ...admin, body: { name } });
      expect(res.status, name).toBe(400);
      expect(res.body).toEqual({ error: 'ValidationError', message: expect.stringMatching(/^name: /) });
    }
    const hosts = await call('POST', '/users', { ...admin, body: { name: 'bob', group: 'hosts' } });
    expect(hosts.status).toBe(400);
    expect(hosts.body.message).toMatch(/^group: .*reserved/);
    const extra = await call('POST', '/users', { ...admin, body: { name: 'bob', role: 'admin' } });
    expect(extra.body.message).toBe('role: unknown field');
    const noGroup = await call('POST', '/users', { ...admin, body: { name: 'bob', group: 'nope' } });
    expect(noGroup.status).toBe(404);
    expect(noGroup.body).toEqual({ error: 'NotFound', message: 'group nope does not exist' });
    expect(await storedNames()).toEqual(before);
    expect(await tokens.list()).toHaveLength(tokensBefore);
    expect((await call('GET', '/users/host:1', admin)).status).toBe(400);
    expect((await call('GET', `/users/${'x'.repeat(65)}`, admin)).status).toBe(400);
  });

  it('refuses a duplicate with 409, and of two concurrent creates exactly one wins', async () => {
    const dup = await call('POST', '/users', { ...admin, body: { name: 'alice' } });
    expect(dup.status).toBe(409);
    expect(dup.body).toEqual({ error: 'Conflict', message: 'user alice already exists' });

    await call('POST', '/groups', { ...admin, body: { name: 'race' } });
    const answers = await Promise.all(
      [0, 1, 2, 3].map(() => call('POST', '/users', { ...admin, body: { name: 'twin', group: 'race' } })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409]);
    const winner = answers.find((a) => a.status === 201)?.body.token;
    expect((await call('GET', '/users/twin', { token: winner })).status).toBe(200);
    // Only the winner's token was written, and the group counts one member.
    const twinTokens = (await tokens.list()).filter((t) => t.user === 'twin');
    expect(twinTokens).toHaveLength(1);
    expect((await groups.get('race')).members).toBe(1);
  });

  it('answers 403 to a non-admin for every admin route, and changes nothing', async () => {
    const bob = { token: await createUser('bob') };
    const before = await storedNames();
    const refusals = [
      await call('GET', '/users', bob),
      await call('POST', '/users', { ...bob, body: { name: 'mallory', admin: true } }),
      await call('GET', '/users/alice', bob),
      await call('PATCH', '/users/alice', { ...bob, body: { group: 'admin' } }),
      await call('DELETE', '/users/alice', bob),
      await call('GET', '/groups', bob),
      await call('POST', '/groups', { ...bob, body: { name: 'mine' } }),
      await call('GET', '/groups/users', bob),
      await call('DELETE', '/groups/race', bob),
      await call('GET', '/tokens?user=alice', bob),
      await call('POST', '/tokens', { ...bob, body: { user: 'alice' } }),
    ];
    for (const res of refusals) {
      expect(res.status, res.raw).toBe(403);
      expect(res.body.error).toBe('Forbidden');
    }
    expect(await storedNames()).toEqual(before);
    expect(await groups.find('mine')).toBeUndefined();
    expect((await users.get('alice')).group).toBe('users');
  });

  it('refuses to delete a user who owns objects, naming them; deletes once they are gone', async () => {
    const carol = await createUser('carol');
    // Only what the scan reads (id, owner): these records stand for carol's objects.
    const owned = [
      ['vms', 9001],
      ['datastores', 9100],
      ['images', 9002],
      ['jobs', 9003],
    ] as const;
    for (const [table, id] of owned) {
      await dynamo().send(
        new PutCommand({ TableName: localTableName({ key: table }), Item: { id, owner: 'carol' } }),
      );
      await dynamo().send(
        new PutCommand({ TableName: localTableName({ key: table }), Item: { id: id + 1, owner: 'carolyn' } }),
      );
    }
    const refused = await call('DELETE', '/users/carol', admin);
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({
      error: 'Conflict',
      message:
        'user carol owns VM 9001; datastore 9100; image 9002; backup job 9003: chown or delete them first',
    });
    expect(await users.find('carol')).toBeDefined();
    expect((await call('GET', '/users/carol', { token: carol })).status).toBe(200);

    for (const [table, id] of owned) {
      await dynamo().send(new DeleteCommand({ TableName: localTableName({ key: table }), Key: { id } }));
    }
    expect((await call('DELETE', '/users/carol', admin)).status).toBe(204);
    expect(await users.find('carol')).toBeUndefined();
    expect((await call('GET', '/users/carol', { token: carol })).status).toBe(401);
    expect((await tokens.list()).filter((t) => t.user === 'carol')).toEqual([]);
    expect((await call('DELETE', '/users/carol', admin)).status).toBe(404);
    expect((await call('DELETE', '/users/root', admin)).body).toEqual({
      error: 'Conflict',
      message: 'you may not delete yourself: ask another admin',
    });
  });

  it('a user deleted and created again under the same name inherits none of the old tokens', async () => {
    const old = await createUser('dave');
    const extra = await call('POST', '/tokens', { token: old, body: { name: 'laptop' } });
    expect(extra.status).toBe(201);
    expect((await call('DELETE', '/users/dave', admin)).status).toBe(204);
    const fresh = await createUser('dave');
    expect((await call('GET', '/users/dave', { token: old })).status).toBe(401);
    expect((await call('GET', '/users/dave', { token: extra.body.token })).status).toBe(401);
    expect((await call('GET', '/users/dave', { token: fresh })).status).toBe(200);
  });
});

describe('groups', () => {
  it('creates, shows, lists, moves users with chgrp, and refuses deleting groups in use', async () => {
    const created = await call('POST', '/groups', { ...admin, body: { name: 'web' } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ name: 'web', builtin: false, createdAt: expect.any(String), members: [] });
    expect((await call('POST', '/groups', { ...admin, body: { name: 'web' } })).status).toBe(409);
    expect((await call('POST', '/groups', { ...admin, body: { name: 'admin' } })).status).toBe(409);
    expect((await call('POST', '/groups', { ...admin, body: { name: 'hosts' } })).status).toBe(400);
    expect((await call('POST', '/groups', { ...admin, body: { name: 'a:b' } })).status).toBe(400);

    const moved = await call('PATCH', '/users/alice', { ...admin, body: { group: 'web' } });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ name: 'alice', group: 'web' });
    expect((await call('PATCH', '/users/alice', { ...admin, body: { group: 'nope' } })).status).toBe(404);
    expect((await users.get('alice')).group).toBe('web');

    const shown = await call('GET', '/groups/web', admin);
    expect(shown.body).toEqual({
      name: 'web',
      builtin: false,
      createdAt: expect.any(String),
      members: ['alice'],
    });
    const listed = await call('GET', '/groups', admin);
    expect(listed.body.items.map((g: { name: string }) => g.name)).toEqual(['admin', 'users', 'race', 'web']);
    expect(listed.body.items[0]).toMatchObject({ name: 'admin', builtin: true });
    expect(listed.body.items[0].members).toEqual(expect.arrayContaining(['ops', 'root']));

    const inUse = await call('DELETE', '/groups/web', admin);
    expect(inUse.status).toBe(409);
    expect(inUse.body.message).toBe(
      'group web has members: alice; move them (lifeboat user chgrp) or delete them first',
    );
    expect(await groups.find('web')).toBeDefined();
    expect((await call('DELETE', '/groups/users', admin)).status).toBe(409);
    expect((await call('DELETE', '/groups/admin', admin)).status).toBe(409);

    expect((await call('PATCH', '/users/alice', { ...admin, body: { group: 'users' } })).status).toBe(200);
    expect((await groups.get('web')).members).toBe(0);
    expect((await call('DELETE', '/groups/web', admin)).status).toBe(204);
    expect((await call('DELETE', '/groups/web', admin)).status).toBe(404);
    expect((await call('GET', '/groups/web', admin)).status).toBe(404);
  });
});

describe('tokens', () => {
  it('creates several per user, lists them without token or hash, and notes last use once a minute', async () => {
    const erin = await createUser('erin');
    const ci = await call('POST', '/tokens', { token: erin, body: { name: 'ci', expires: '30d' } });
    expect(ci.status).toBe(201);
    expect(ci.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      user: 'erin',
      name: 'ci',
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
      state: 'active',
      token: expect.stringMatching(/^lb_/),
    });
    const life = Date.parse(ci.body.expiresAt) - Date.parse(ci.body.createdAt);
    expect(life).toBe(30 * 86400 * 1000);

    expect((await call('GET', '/users/erin', { token: ci.body.token })).status).toBe(200);
    const listed = await call('GET', '/tokens', { token: erin });
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((t: { name: string }) => t.name)).toEqual(['first', 'ci']);
    expect(listed.raw).not.toContain(ci.body.token);
    expect(listed.raw).not.toContain(erin);
    expect(listed.raw).not.toContain(hashToken(ci.body.token));
    expect(listed.raw).not.toMatch(/"hash"|[0-9a-f]{64}/);
    const used = listed.body.items.find((t: { name: string }) => t.name === 'ci');
    expect(Date.now() - Date.parse(used.lastUsed)).toBeLessThan(10_000);

    // A second use within the minute writes nothing.
    await call('GET', '/users/erin', { token: ci.body.token });
    expect((await tokens.get(hashToken(ci.body.token))).lastUsed).toBe(used.lastUsed);

    // A minute later the next use is noted; a revoked record is never touched again.
    const later = Date.parse(used.lastUsed) + 61_000;
    await touchToken(await tokens.get(hashToken(ci.body.token)), later);
    expect((await tokens.get(hashToken(ci.body.token))).lastUsed).toBe(new Date(later).toISOString());
    await tokens.update(hashToken(ci.body.token), { revokedAt: new Date().toISOString() });
    const revokedRecord = await tokens.get(hashToken(ci.body.token));
    await touchToken(revokedRecord, later + 120_000);
    expect((await tokens.get(hashToken(ci.body.token))).lastUsed).toBe(new Date(later).toISOString());

    // An admin sees and makes tokens of others.
    const byAdmin = await call('POST', '/tokens', { ...admin, body: { user: 'erin', name: 'given' } });
    expect(byAdmin.status).toBe(201);
    expect(byAdmin.body.expiresAt).toBeUndefined();
    expect((await call('GET', '/tokens?user=erin', admin)).body.items).toHaveLength(3);
    expect((await call('POST', '/tokens', { ...admin, body: { user: 'ghost' } })).status).toBe(404);
  });

  it('refuses a bad lifetime or name with 400 and makes no token', async () => {
    const frank = await createUser('frank');
    const count = async () => (await tokens.list()).filter((t) => t.user === 'frank').length;
    const before = await count();
    for (const expires of ['30', '0d', '-1d', '10y', '99999w', 'soon']) {
      const res = await call('POST', '/tokens', { token: frank, body: { expires } });
      expect(res.status, expires).toBe(400);
      expect(res.body.message).toMatch(/^expires: /);
    }
    const badName = await call('POST', '/tokens', { token: frank, body: { name: 'a\nb' } });
    expect(badName.body.message).toMatch(/^name: /);
    expect(await count()).toBe(before);
  });

  it('an expired token gets 401 at once', async () => {
    const gina = await createUser('gina');
    const short = await call('POST', '/tokens', { token: gina, body: { name: 'short', expires: '1s' } });
    expect(short.status).toBe(201);
    expect((await call('GET', '/users/gina', { token: short.body.token })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, Date.parse(short.body.expiresAt) - Date.now() + 50));
    const late = await call('GET', '/users/gina', { token: short.body.token });
    expect(late.status).toBe(401);
    expect(late.body).toEqual({ error: 'Unauthorized', message: `token ${short.body.id} has expired` });
    const listed = await call('GET', '/tokens', { token: gina });
    expect(listed.body.items.find((t: { id: string }) => t.id === short.body.id).state).toBe('expired');
  });

  it('a revoked token gets 401 on the next request; only its user or an admin may revoke it', async () => {
    const hank = await createUser('hank');
    const other = await createUser('ivy');
    const made = await call('POST', '/tokens', { token: hank, body: { name: 'laptop' } });
    expect((await call('GET', '/users/hank', { token: made.body.token })).status).toBe(200);

    const foreign = await call('DELETE', `/tokens/${made.body.id}`, { token: other });
    expect(foreign.status).toBe(403);
    expect((await call('GET', '/users/hank', { token: made.body.token })).status).toBe(200);

    const revoked = await call('DELETE', `/tokens/${made.body.id}`, { token: hank });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: made.body.id, state: 'revoked', revokedAt: expect.any(String) });
    const next = await call('GET', '/users/hank', { token: made.body.token });
    expect(next.status).toBe(401);
    expect(next.body.message).toBe(`token ${made.body.id} was revoked`);
    // Its other tokens still work; revoking again is harmless; an admin may revoke anyone's.
    expect((await call('GET', '/users/hank', { token: hank })).status).toBe(200);
    expect((await call('DELETE', `/tokens/${made.body.id}`, { token: hank })).status).toBe(200);
    const first = (await call('GET', '/tokens', { token: hank })).body.items.find(
      (t: { name: string }) => t.name === 'first',
    );
    expect((await call('DELETE', `/tokens/${first.id}`, admin)).status).toBe(200);
    expect((await call('GET', '/users/hank', { token: hank })).status).toBe(401);

    expect((await call('DELETE', '/tokens/0123456789abcdef', admin)).status).toBe(404);
    expect((await call('DELETE', '/tokens/nothex', admin)).status).toBe(400);
  });

  it('host credentials keep authenticating from the users table, and reach no account route', async () => {
    const credential = 'lbh_host-credential-0123456789';
    await users.put({
      name: 'host:77',
      group: 'hosts',
      role: 'host',
      hostId: 77,
      tokenHash: hashToken(credential),
      createdAt: new Date().toISOString(),
    });
    // Authenticated (no such host record: 404), and confined to its own host.
    expect((await call('GET', '/hosts/77', { token: credential })).status).toBe(404);
    expect((await call('GET', '/tokens', { token: credential })).status).toBe(403);
    expect((await call('POST', '/tokens', { token: credential, body: {} })).status).toBe(403);
    expect(
      (await call('GET', '/users', admin)).body.items.map((u: { name: string }) => u.name),
    ).not.toContain('host:77');
    expect((await call('GET', '/users/host:77', admin)).status).toBe(400);
    expect((await call('GET', '/users', { token: 'lb_unknown' })).status).toBe(401);
  });
});

describe('GET /me', () => {
  it('answers the caller (a user, the admin with a token on its user record), never a secret', async () => {
    const token = await createUser('meg');
    const mine = await call('GET', '/me', { token });
    expect(mine.status, mine.raw).toBe(200);
    expect(mine.body).toEqual({ name: 'meg', group: 'users', admin: false, createdAt: expect.any(String) });

    // root's token predates the tokens table: it is only on root's user record.
    const root = await call('GET', '/me', admin);
    expect(root.status, root.raw).toBe(200);
    expect(root.body).toEqual({ name: 'root', group: 'admin', admin: true, createdAt: expect.any(String) });
    const stored = await users.get('root');
    expect(stored.tokenHash).toBe(hashToken(ADMIN));
    for (const secret of [stored.tokenHash as string, ADMIN, token]) {
      expect(root.raw).not.toContain(secret);
      expect(mine.raw).not.toContain(secret);
    }
    for (const answer of [mine, root]) {
      expect(Object.keys(answer.body).sort()).toEqual(['admin', 'createdAt', 'group', 'name']);
    }
  });

  it('is 401 without a token or with an unknown one, and 403 to a host credential', async () => {
    const none = await call('GET', '/me', {});
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('Unauthorized');
    expect((await call('GET', '/me', { token: 'lb_unknown-0123456789' })).status).toBe(401);
    const credential = 'lbh_me-host-credential-0123456789';
    await users.put({
      name: 'host:78',
      group: 'hosts',
      role: 'host',
      hostId: 78,
      tokenHash: hashToken(credential),
      createdAt: new Date().toISOString(),
    });
    expect((await call('GET', '/me', { token: credential })).status).toBe(403);
  });
});

describe("local mode's admin token (ensureAdmin)", () => {
  it('moves the admin into the tokens table, retires the older token, and is idempotent', async () => {
    const legacy = 'legacy-admin-token-0123456789';
    await seedUser('admin', legacy, 'admin', 'admin');
    expect((await call('GET', '/users', { token: legacy })).status).toBe(200);

    const first = 'lb_local-admin-one-0123456789';
    expect(await ensureAdmin(ddb, hashToken(first))).toBe('updated');
    expect(await ensureAdmin(ddb, hashToken(first))).toBe('unchanged');
    expect((await call('GET', '/users', { token: first })).status).toBe(200);
    expect((await call('GET', '/users', { token: legacy })).status).toBe(401);
    expect((await users.get('admin')).tokenHash).toBeUndefined();
    const listed = await call('GET', '/tokens', { token: first });
    expect(listed.body.items.map((t: { name: string }) => t.name)).toEqual(['local mode']);

    // A token the admin made survives a new local-mode token; the old local-mode one does not.
    const own = await call('POST', '/tokens', { token: first, body: { name: 'script' } });
    const second = 'lb_local-admin-two-0123456789';
    expect(await ensureAdmin(ddb, hashToken(second))).toBe('updated');
    expect((await call('GET', '/users', { token: second })).status).toBe(200);
    expect((await call('GET', '/users', { token: own.body.token })).status).toBe(200);
    expect((await call('GET', '/users', { token: first })).status).toBe(401);
  });
});
