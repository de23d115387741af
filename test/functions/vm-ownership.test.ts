/**
 * Who owns a VM the inventory sees (issue 12, item 2), through the API handler on DynamoDB Local
 * and fauxqs with a registered host reporting with its own credential: the owner named in the
 * domain's metadata at first sight, else the host's default owner (`PATCH /hosts/{id}`), else
 * admin; later reports never change it, a chown sticks; an unknown or hostile name falls back
 * without failing the report.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { hosts } from '#functions/repo/hosts.ts';
import { vms } from '#functions/repo/vms.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = 'admin-token-vm-ownership';
const ALICE = 'alice-token-vm-ownership';
const admin = { token: ADMIN };

useControlPlane({ name: 'vm-ownership', secrets: 'subfolder', admin: { token: ADMIN, group: 'admin' } });
beforeAll(async () => {
  await seedUser('alice', ALICE, 'user', 'users');
  await seedUser('bob', 'bob-token-vm-ownership', 'user', 'users');
  expect((await call('POST', '/groups', { ...admin, body: { name: 'web' } })).status).toBe(201);
});

interface RegisteredHost {
  id: number;
  credential: string;
}

async function registered(name: string): Promise<RegisteredHost> {
  const enrolled = await call('POST', '/hosts/enroll', { ...admin, body: { name } });
  expect(enrolled.status).toBe(201);
  const { publicKey } = generateHostKeyPair();
  const res = await call('POST', '/hosts/register', {
    token: enrolled.body.token,
    body: { name, publicKey },
  });
  expect(res.status).toBe(201);
  return { id: res.body.host.id, credential: res.body.credential };
}

let uuidCount = 0;
const newUuid = () => `0e4e0000-0000-4000-8000-${String(++uuidCount).padStart(12, '0')}`;

const domain = (name: string, uuid: string, owner?: { user: string; group?: string }) => ({
  domain: name,
  uuid,
  state: 'RUNNING',
  disks: [
    { id: 0, target: 'vda', source: `/var/lib/libvirt/images/${name}.qcow2`, format: 'qcow2', size: 1024 },
  ],
  nics: [],
  template: `<domain><name>${name}</name><uuid>${uuid}</uuid></domain>`,
  ...(owner ? { owner } : {}),
});

interface Seen {
  id: number;
  domain: string;
  owner: string;
  group: string;
  permissions: string;
}

async function report(host: RegisteredHost, seen: ReturnType<typeof domain>[]): Promise<Map<string, Seen>> {
  const res = await call('PUT', `/hosts/${host.id}/inventory`, {
    token: host.credential,
    body: { vms: seen },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return new Map((res.body.items as Seen[]).map((vm) => [vm.domain, vm]));
}

describe('first-sight ownership of inventoried VMs', () => {
  it('takes the metadata owner at first sight only; later reports keep it and a chown sticks', async () => {
    const host = await registered('kvm-own-1');
    const uuid = newUuid();
    const first = (await report(host, [domain('web-1', uuid, { user: 'alice', group: 'web' })])).get('web-1');
    expect(first).toMatchObject({ owner: 'alice', group: 'web', permissions: 'um-------' });
    const id = first?.id as number;

    // The metadata now names bob: the VM stays alice's.
    await report(host, [domain('web-1', uuid, { user: 'bob' })]);
    expect(await vms.get(id)).toMatchObject({ owner: 'alice', group: 'web' });

    // alice sees it (her listing), chown gives it to bob, and the metadata does not take it back.
    const listed = await call('GET', '/vms', { token: ALICE });
    expect(listed.body.items.map((vm: Seen) => vm.id)).toContain(id);
    const chown = await call('PUT', `/vms/${id}/owner`, { ...admin, body: { owner: 'bob', group: 'users' } });
    expect(chown.status, JSON.stringify(chown.body)).toBe(200);
    await report(host, [domain('web-1', uuid, { user: 'alice', group: 'web' })]);
    expect(await vms.get(id)).toMatchObject({ owner: 'bob', group: 'users' });
  });

  it('gives the owner its own group when the named group does not exist', async () => {
    const host = await registered('kvm-own-2');
    const seen = await report(host, [domain('db-1', newUuid(), { user: 'alice', group: 'nosuchgroup' })]);
    expect(seen.get('db-1')).toMatchObject({ owner: 'alice', group: 'users' });
  });

  it('falls back to admin for an unknown or hostile owner, never failing the report', async () => {
    const host = await registered('kvm-own-3');
    const seen = await report(host, [
      domain('a-1', newUuid(), { user: 'carol' }),
      domain('a-2', newUuid(), { user: 'host:1' }),
      domain('a-3', newUuid(), { user: 'x'.repeat(1000), group: '../../etc' }),
      domain('a-4', newUuid(), { user: '', group: 'web' }),
      domain('a-5', newUuid(), { user: 'alice', group: 'hosts' }),
    ]);
    for (const name of ['a-1', 'a-2', 'a-3', 'a-4']) {
      expect(seen.get(name), name).toMatchObject({ owner: 'admin', group: 'admin' });
    }
    expect(seen.get('a-5')).toMatchObject({ owner: 'alice', group: 'users' });
  });
});

describe("the host's default owner", () => {
  it('PATCH /hosts/{id} sets it (admins, existing names only) and VMs without metadata get it', async () => {
    const host = await registered('kvm-own-4');
    const patch = (body: unknown, token = ADMIN) => call('PATCH', `/hosts/${host.id}`, { token, body });

    expect((await patch({ defaultOwner: 'alice' }, ALICE)).status).toBe(403);
    const unknown = await patch({ defaultOwner: 'carol' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toBe('User carol does not exist');
    expect((await patch({ defaultOwner: 'alice', defaultGroup: 'nosuch' })).status).toBe(404);
    expect((await patch({ defaultOwner: 'host:1' })).status).toBe(400);
    expect((await patch({ defaultGroup: 'web' })).status).toBe(400);
    expect((await patch({ defaultOwner: null, defaultGroup: 'web' })).status).toBe(400);
    expect(await hosts.get(host.id)).not.toHaveProperty('defaultOwner');

    const set = await patch({ defaultOwner: 'alice', defaultGroup: 'web' });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ defaultOwner: 'alice', defaultGroup: 'web' });
    expect((await call('GET', `/hosts/${host.id}`, admin)).body).toMatchObject({
      defaultOwner: 'alice',
      defaultGroup: 'web',
    });

    const seen = await report(host, [
      domain('d-1', newUuid()),
      domain('d-2', newUuid(), { user: 'bob' }),
      domain('d-3', newUuid(), { user: 'carol' }),
    ]);
    expect(seen.get('d-1')).toMatchObject({ owner: 'alice', group: 'web' });
    // The metadata wins over the host's default; an unknown one falls back to it.
    expect(seen.get('d-2')).toMatchObject({ owner: 'bob', group: 'users' });
    expect(seen.get('d-3')).toMatchObject({ owner: 'alice', group: 'web' });

    // A new owner alone: their own group from then on. The group alone keeps the owner.
    expect((await patch({ defaultOwner: 'bob' })).body).not.toHaveProperty('defaultGroup');
    expect((await patch({ defaultGroup: 'web' })).body).toMatchObject({
      defaultOwner: 'bob',
      defaultGroup: 'web',
    });
    // null: none, the admin owns what is found.
    const cleared = await patch({ defaultOwner: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body).not.toHaveProperty('defaultOwner');
    expect(cleared.body).not.toHaveProperty('defaultGroup');
    // Clearing a group that is not there is no error.
    expect((await patch({ defaultGroup: null })).status).toBe(200);
    expect((await report(host, [domain('d-4', newUuid())])).get('d-4')).toMatchObject({ owner: 'admin' });
  });
});
