/**
 * A runner is a host, not an admin: enrollment tokens, registration, and the host principal's
 * confinement to its own host, through the API handler on DynamoDB Local and fauxqs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { datastores } from '#functions/repo/datastores.ts';
import { hosts } from '#functions/repo/hosts.ts';
import { users } from '#functions/repo/users.ts';
import { vms } from '#functions/repo/vms.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = 'admin-token-0123456789';
const ALICE = 'alice-token-0123456789';
const admin = { token: ADMIN };

useControlPlane({ name: 'identity', secrets: 'subfolder', admin: { token: ADMIN, group: 'admin' } });
beforeAll(async () => {
  await seedUser('alice', ALICE, 'user', 'users');
});

const publicKey = () => generateHostKeyPair().publicKey;
const domain = (name: string) => ({
  domain: name,
  state: 'RUNNING',
  disks: [
    { id: 0, target: 'vda', source: `/var/lib/libvirt/images/${name}.qcow2`, format: 'qcow2', size: 1024 },
  ],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
});

/** An enrollment token for `name`, made by the admin. */
async function enroll(name: string, expiresInSeconds?: number): Promise<string> {
  const res = await call('POST', '/hosts/enroll', { ...admin, body: { name, expiresInSeconds } });
  expect(res.status).toBe(201);
  return res.body.token;
}

/** Enrolls and registers `name`: its host and credential. */
async function enrolled(name: string): Promise<{ id: number; credential: string }> {
  const token = await enroll(name);
  const res = await call('POST', '/hosts/register', { token, body: { name, publicKey: publicKey() } });
  expect(res.status).toBeLessThan(300);
  return { id: res.body.host.id, credential: res.body.credential };
}

describe('enrollment and registration', () => {
  it('enrolls a host (admins only) and registers its runner with the one-time token', async () => {
    const before = Date.now();
    const enrolled = await call('POST', '/hosts/enroll', { ...admin, body: { name: 'kvm-a' } });
    expect(enrolled.status).toBe(201);
    expect(enrolled.body).toEqual({
      name: 'kvm-a',
      token: expect.stringMatching(/^lbe_/),
      expiresAt: expect.any(String),
    });
    const ttl = Date.parse(enrolled.body.expiresAt) - before;
    expect(ttl).toBeGreaterThan(3590_000);
    expect(ttl).toBeLessThan(3700_000);
    // Only its hash is kept.
    expect(JSON.stringify(await users.list())).not.toContain(enrolled.body.token);

    const key = publicKey();
    const reg = await call('POST', '/hosts/register', {
      token: enrolled.body.token,
      body: { name: 'kvm-a', publicKey: key, runnerVersion: '9.9.9' },
    });
    expect(reg.status).toBe(201);
    expect(reg.body.credential).toMatch(/^lbh_/);
    expect(reg.body.host).toMatchObject({
      name: 'kvm-a',
      state: 'INIT',
      publicKey: key,
      runnerVersion: '9.9.9',
    });
    expect(reg.body.host.queueUrl).toMatch(new RegExp(`lifeboat-host-${reg.body.host.id}$`));
    const stored = await hosts.get(reg.body.host.id);
    expect(stored.publicKey).toBe(key);
    expect(await users.find(`host:${stored.id}`)).toMatchObject({
      role: 'host',
      group: 'hosts',
      hostId: stored.id,
    });
    expect(await users.find('enroll:kvm-a')).toBeUndefined();

    // The credential reads its own host.
    const own = await call('GET', `/hosts/${stored.id}`, { token: reg.body.credential });
    expect(own.status).toBe(200);
    expect(own.body.queueUrl).toBe(stored.queueUrl);
  });

  it('answers 401 to a replayed enrollment token and changes nothing', async () => {
    const token = await enroll('kvm-b');
    const first = await call('POST', '/hosts/register', {
      token,
      body: { name: 'kvm-b', publicKey: publicKey() },
    });
    expect(first.status).toBe(201);
    const hostsBefore = await hosts.list();
    const replay = await call('POST', '/hosts/register', {
      token,
      body: { name: 'kvm-b', publicKey: publicKey() },
    });
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('Unauthorized');
    expect(await hosts.list()).toEqual(hostsBefore);
    // The credential the first registration issued still works.
    expect((await call('GET', `/hosts/${first.body.host.id}`, { token: first.body.credential })).status).toBe(
      200,
    );
  });

  it('answers 401 to an expired enrollment token', async () => {
    const token = await enroll('kvm-c', 1);
    await users.update('enroll:kvm-c', { enrollUntil: new Date(Date.now() - 1000).toISOString() });
    const res = await call('POST', '/hosts/register', {
      token,
      body: { name: 'kvm-c', publicKey: publicKey() },
    });
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/enrollment token expired/);
    expect((await hosts.list()).find((h) => h.name === 'kvm-c')).toBeUndefined();
  });

  it('refuses another name (403) and a bad key (400) without spending the token', async () => {
    const token = await enroll('kvm-d');
    const other = await call('POST', '/hosts/register', {
      token,
      body: { name: 'kvm-x', publicKey: publicKey() },
    });
    expect(other.status).toBe(403);
    expect(other.body.message).toBe('this enrollment token is for host "kvm-d", not "kvm-x"');
    const badKey = await call('POST', '/hosts/register', {
      token,
      body: { name: 'kvm-d', publicKey: 'nope' },
    });
    expect(badKey.status).toBe(400);
    expect(badKey.body.message).toBe('publicKey: not a PEM public key');
    const rsa = await call('POST', '/hosts/register', {
      token,
      body: {
        name: 'kvm-d',
        publicKey: (await import('node:crypto'))
          .generateKeyPairSync('ed25519')
          .publicKey.export({ type: 'spki', format: 'pem' })
          .toString(),
      },
    });
    expect(rsa.status).toBe(400);
    expect((await hosts.list()).map((h) => h.name)).not.toContain('kvm-x');
    expect((await hosts.list()).map((h) => h.name)).not.toContain('kvm-d');
    const ok = await call('POST', '/hosts/register', {
      token,
      body: { name: 'kvm-d', publicKey: publicKey() },
    });
    expect(ok.status).toBe(201);
  });

  it('an enrollment token does nothing but register its host', async () => {
    const token = await enroll('kvm-e');
    for (const [method, path, body] of [
      ['GET', '/vms'],
      ['GET', '/hosts'],
      ['POST', '/hosts', { name: 'kvm-e' }],
      ['POST', '/hosts/enroll', { name: 'kvm-z' }],
      ['POST', '/datastores', { name: 'x', driver: 'rsync', attributes: { RSYNC_HOST: 'b' } }],
    ] as const) {
      const res = await call(method, path, { token, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.message).toMatch(/^an enrollment token for host "kvm-e" may only register it/);
    }
    expect(await users.find('enroll:kvm-z')).toBeUndefined();
  });

  it('only enrollment tokens register, and only admins enroll', async () => {
    for (const token of [ADMIN, ALICE]) {
      const res = await call('POST', '/hosts/register', {
        token,
        body: { name: 'kvm-f', publicKey: publicKey() },
      });
      expect(res.status).toBe(403);
    }
    const byAlice = await call('POST', '/hosts/enroll', { token: ALICE, body: { name: 'kvm-f' } });
    expect(byAlice.status).toBe(403);
    const bad = await call('POST', '/hosts/enroll', {
      ...admin,
      body: { name: 'bad name', expiresInSeconds: 0 },
    });
    expect(bad.status).toBe(400);
    expect(await users.find('enroll:kvm-f')).toBeUndefined();
  });

  it('a newer enrollment of a name replaces the older token', async () => {
    const old = await enroll('kvm-g');
    const fresh = await enroll('kvm-g');
    const stale = await call('POST', '/hosts/register', {
      token: old,
      body: { name: 'kvm-g', publicKey: publicKey() },
    });
    expect(stale.status).toBe(401);
    const ok = await call('POST', '/hosts/register', {
      token: fresh,
      body: { name: 'kvm-g', publicKey: publicKey() },
    });
    expect(ok.status).toBe(201);
  });

  it('re-enrolling a reinstalled host binds to the same host, with a new key and credential', async () => {
    const first = await enrolled('kvm-h');
    const token = await enroll('kvm-h');
    const key = publicKey();
    const again = await call('POST', '/hosts/register', { token, body: { name: 'kvm-h', publicKey: key } });
    expect(again.status).toBe(200);
    expect(again.body.host.id).toBe(first.id);
    expect((await hosts.get(first.id)).publicKey).toBe(key);
    expect((await hosts.list()).filter((h) => h.name === 'kvm-h')).toHaveLength(1);
    // The old credential is revoked.
    expect((await call('GET', `/hosts/${first.id}`, { token: first.credential })).status).toBe(401);
    expect((await call('GET', `/hosts/${first.id}`, { token: again.body.credential })).status).toBe(200);
  });
});

describe('a host principal', () => {
  let me: { id: number; credential: string };
  let other: { id: number };
  let otherVmIds: number[];

  beforeAll(async () => {
    me = await enrolled('kvm-me');
    const created = await call('POST', '/hosts', { ...admin, body: { name: 'kvm-other' } });
    other = { id: created.body.id };
    const report = await call('PUT', `/hosts/${other.id}/inventory`, {
      ...admin,
      body: { vms: [domain('theirs')] },
    });
    expect(report.status).toBe(200);
    otherVmIds = report.body.items.map((v: { id: number }) => v.id);
  });

  it('reports its own inventory: new VMs belong to admin, never to the host', async () => {
    const res = await call('PUT', `/hosts/${me.id}/inventory`, {
      token: me.credential,
      body: { vms: [domain('mine-1'), domain('theirs')], runnerVersion: '1.2.3' },
    });
    expect(res.status).toBe(200);
    expect(res.body.items.map((v: { domain: string; hostId: number }) => [v.domain, v.hostId])).toEqual([
      ['mine-1', me.id],
      ['theirs', me.id],
    ]);
    for (const vm of res.body.items)
      expect(vm).toMatchObject({ owner: 'admin', group: 'admin', permissions: 'um-------' });
    expect(await hosts.get(me.id)).toMatchObject({ state: 'MONITORED', runnerVersion: '1.2.3' });
    // A domain with another host's VM name is a VM of its own: the other host's VM is untouched.
    for (const id of otherVmIds)
      expect(await vms.get(id)).toMatchObject({ hostId: other.id, state: 'RUNNING' });
    // A user sees none of them (admin-owned, um-------).
    expect((await call('GET', '/vms', { token: ALICE })).body.items).toEqual([]);
  });

  it('is refused everything else with a 403 naming the host, changing nothing', async () => {
    const token = me.credential;
    const datastoresBefore = await datastores.list();
    const hostsBefore = await hosts.list();
    const vmsBefore = await vms.list();
    const usersBefore = (await users.list()).map((u) => u.name).sort();
    const vmId = otherVmIds[0];
    for (const [method, path, body] of [
      ['GET', '/vms'],
      ['GET', `/vms/${vmId}`],
      ['GET', '/hosts'],
      ['GET', `/hosts/${other.id}`],
      ['PUT', `/hosts/${other.id}/inventory`, { vms: [] }],
      ['PATCH', `/hosts/${me.id}`, { maxBackupsHost: 9 }],
      ['DELETE', `/hosts/${me.id}`],
      ['DELETE', `/hosts/${other.id}`],
      ['POST', '/hosts', { name: 'kvm-new' }],
      ['POST', '/hosts/enroll', { name: 'kvm-new' }],
      ['POST', '/hosts/register', { name: 'kvm-me', publicKey: publicKey() }],
      ['POST', '/datastores', { name: 'x', driver: 'rsync', attributes: { RSYNC_HOST: 'b' } }],
      ['GET', '/datastores'],
      ['POST', `/vms/${vmId}/backup`, { datastoreId: 1 }],
      ['PUT', `/vms/${vmId}/backup-config`, { pairs: { KEEP_LAST: '1' } }],
      ['DELETE', `/vms/${vmId}`],
      ['GET', '/executions'],
      [
        'POST',
        '/downloads',
        { url: 'restic://1/x/disk.0.raw', hostId: me.id, toPath: '/root/.ssh/authorized_keys' },
      ],
      ['GET', '/config'],
      ['POST', '/jobs', { name: 'j', vmIds: [vmId], datastoreId: 1 }],
    ] as const) {
      const res = await call(method, path, { token, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error).toBe('Forbidden');
      expect(res.body.message).toMatch(new RegExp(`^host ${me.id} may not ${method} /`));
    }
    expect(
      (await call('PUT', `/hosts/${other.id}/inventory`, { token, body: { vms: [] } })).body.message,
    ).toBe(`host ${me.id} may not PUT /hosts/${other.id}/inventory`);
    expect(await datastores.list()).toEqual(datastoresBefore);
    expect(await hosts.list()).toEqual(hostsBefore);
    expect(await vms.list()).toEqual(vmsBefore);
    expect((await users.list()).map((u) => u.name).sort()).toEqual(usersBefore);
  });

  it('loses its credential when its host is deleted', async () => {
    const gone = await enrolled('kvm-gone');
    expect((await call('DELETE', `/hosts/${gone.id}`, admin)).status).toBe(204);
    expect(await users.find(`host:${gone.id}`)).toBeUndefined();
    expect((await call('GET', `/hosts/${gone.id}`, { token: gone.credential })).status).toBe(401);
  });
});

describe('the admin token', () => {
  it('still creates hosts (with an optional key, checked) and reports any inventory', async () => {
    const key = publicKey();
    const made = await call('POST', '/hosts', { ...admin, body: { name: 'kvm-admin', publicKey: key } });
    expect(made.status).toBe(201);
    expect(made.body.publicKey).toBe(key);
    const bad = await call('POST', '/hosts', { ...admin, body: { name: 'kvm-badkey', publicKey: 'x' } });
    expect(bad.status).toBe(400);
    expect((await hosts.list()).map((h) => h.name)).not.toContain('kvm-badkey');
    const report = await call('PUT', `/hosts/${made.body.id}/inventory`, {
      ...admin,
      body: { vms: [domain('sim')] },
    });
    expect(report.status).toBe(200);
    expect(report.body.items[0]).toMatchObject({ owner: 'admin', group: 'admin' });
    expect((await call('GET', '/vms', admin)).status).toBe(200);
    // A user still may not report an inventory.
    const byAlice = await call('PUT', `/hosts/${made.body.id}/inventory`, {
      token: ALICE,
      body: { vms: [] },
    });
    expect(byAlice.status).toBe(403);
  });
});
