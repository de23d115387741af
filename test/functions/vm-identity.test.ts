/**
 * A VM is its libvirt domain UUID (issue 10, item 7), through the API handler on DynamoDB Local
 * and fauxqs, with two registered hosts reporting with their own credentials: a new domain under
 * an old name is a new VM; a VM whose UUID moves to another host keeps its id, backups and
 * schedules, and its next backup goes there; a host cannot take a VM still reported elsewhere,
 * nor one a backup holds.
 */
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { hosts } from '#functions/repo/hosts.ts';
import { dequeue } from '#functions/repo/requests.ts';
import { lockCondition, vms } from '#functions/repo/vms.ts';
import { TABLES } from '#functions/tables.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { createTableInput, ensureIndexes } from '#local/dynamodb.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = 'admin-token-vm-identity';
const admin = { token: ADMIN };
let datastoreId: number;

const plane = useControlPlane({
  name: 'vm-identity',
  secrets: 'subfolder',
  admin: { token: ADMIN, group: 'admin' },
});
beforeAll(async () => {
  const ds = await call('POST', '/datastores', {
    ...admin,
    body: { name: 'repo', driver: 'restic', attributes: { RESTIC_PASSWORD: 'pw-vm-identity' } },
  });
  expect(ds.status).toBe(201);
  datastoreId = ds.body.id;
});

interface RegisteredHost {
  id: number;
  credential: string;
}

/** Enrolls and registers a runner for `name`: its host and credential. */
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
/** A fresh domain UUID, as libvirt prints them. */
const newUuid = () => `5a1e0000-0000-4000-8000-${String(++uuidCount).padStart(12, '0')}`;

const domain = (name: string, uuid: string, state = 'RUNNING') => ({
  domain: name,
  uuid,
  state,
  disks: [
    {
      id: 0,
      target: 'vda',
      source: `/var/lib/libvirt/images/${name}.qcow2`,
      format: 'qcow2',
      size: 1024,
      canIncrement: true,
    },
  ],
  nics: [],
  template: `<domain><name>${name}</name><uuid>${uuid}</uuid></domain>`,
});

interface VmView {
  id: number;
  domain: string;
  uuid?: string;
  hostId: number;
  state: string;
}

/** The host's report, as its runner sends it; the answer's status must be 200. */
async function report(host: RegisteredHost, vmsSeen: ReturnType<typeof domain>[]) {
  const res = await call('PUT', `/hosts/${host.id}/inventory`, {
    token: host.credential,
    body: { vms: vmsSeen },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as {
    items: VmView[];
    refused: { domain: string; uuid: string; vmId: number; reason: string }[];
  };
}

/** A VM with a configured chain (BACKUP_CONFIG, BACKUP_IDS as a few backups would leave them) and a schedule. */
async function withHistory(vmId: number) {
  const config = await call('PUT', `/vms/${vmId}/backup-config`, {
    ...admin,
    body: { pairs: { MODE: 'INCREMENT', KEEP_LAST: '4' } },
  });
  expect(config.status).toBe(200);
  await vms.update(vmId, {
    'backups.BACKUP_IDS': [11, 12],
    'backups.BACKUP_CONFIG.INCREMENTAL_BACKUP_ID': '11',
  });
  const schedule = await call('POST', `/vms/${vmId}/schedules`, {
    ...admin,
    body: { datastoreId, time: '+3600', repeat: 'daily' },
  });
  expect(schedule.status).toBe(201);
  return vms.get(vmId);
}

describe('a VM is its domain UUID', () => {
  let a: RegisteredHost;
  let b: RegisteredHost;

  beforeAll(async () => {
    a = await registered('kvm-uuid-a');
    b = await registered('kvm-uuid-b');
  });

  it('a new domain under an old name is a new VM; the old one stays GONE with its history', async () => {
    const oldUuid = newUuid();
    const first = await report(a, [domain('web', oldUuid)]);
    const old = first.items.find((v) => v.domain === 'web');
    expect(old).toMatchObject({ uuid: oldUuid, hostId: a.id, state: 'RUNNING' });
    const before = await withHistory(old?.id ?? -1);

    // `virsh undefine web; virsh define web.xml` with a new UUID.
    const newOne = newUuid();
    const second = await report(a, [domain('web', newOne)]);
    expect(second.refused).toEqual([]);
    const webs = second.items.filter((v) => v.domain === 'web');
    expect(webs.map((v) => [v.id === before.id, v.uuid, v.state])).toEqual([
      [true, oldUuid, 'GONE'],
      [false, newOne, 'RUNNING'],
    ]);
    const after = await vms.get(before.id);
    expect(after.backups).toEqual(before.backups);
    const fresh = await vms.get(webs[1]?.id ?? -1);
    expect(fresh.backups).toEqual({ BACKUP_CONFIG: {}, BACKUP_IDS: [] });

    // And the old VM's next report does not bring it back under the new one's record.
    const third = await report(a, [domain('web', newOne)]);
    expect(third.items.filter((v) => v.domain === 'web').map((v) => v.state)).toEqual(['GONE', 'RUNNING']);
  });

  it('matches UUIDs whatever their case and dashes, and a renamed domain stays the same VM', async () => {
    const uuid = newUuid();
    const first = await report(a, [domain('db', uuid)]);
    const id = first.items.find((v) => v.domain === 'db')?.id;
    const shouted = uuid.toUpperCase().replaceAll('-', '');
    const renamed = await report(a, [domain('db-renamed', shouted)]);
    const vm = renamed.items.find((v) => v.id === id);
    expect(vm).toMatchObject({ domain: 'db-renamed', uuid, state: 'RUNNING' });
    expect(renamed.items.filter((v) => v.uuid === uuid)).toHaveLength(1);
  });

  it('refuses a report naming the same UUID twice, and changes nothing', async () => {
    const uuid = newUuid();
    const before = await vms.list();
    const res = await call('PUT', `/hosts/${a.id}/inventory`, {
      token: a.credential,
      body: { vms: [domain('twin-1', uuid), domain('twin-2', uuid.toUpperCase())] },
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'ValidationError', message: 'vms: domain UUIDs must be unique' });
    expect(await vms.list()).toEqual(before);
  });

  it('reports of a new domain that arrive at once make one VM, whichever hosts send them', async () => {
    // A runner's report that outlived its client's timeout, a retry, two hosts seeing one UUID:
    // each report finds no record of the UUID and would write its own, and the next report
    // would leave all but the newest GONE for good, their backups refused.
    // Hosts of its own: whichever wins keeps a record the other tests' hosts never list.
    const c = await registered('kvm-burst-c');
    const d = await registered('kvm-burst-d');
    const uuid = newUuid();
    const answers = await Promise.all([
      report(c, [domain('burst', uuid)]),
      report(c, [domain('burst', uuid)]),
      report(c, [domain('burst', uuid)]),
      report(d, [domain('burst', uuid)]),
    ]);
    const records = (await vms.list()).filter((v) => v.uuid === uuid);
    expect(records).toHaveLength(1);
    const [vm] = records;
    expect(vm?.state).toBe('RUNNING');
    // The host that did not create it was refused (it still runs on the other), never given a copy.
    const refused = answers.flatMap((r) => r.refused);
    expect(refused.every((r) => r.vmId === vm?.id && r.uuid === uuid)).toBe(true);
    expect(refused.length).toBe(vm?.hostId === c.id ? 1 : 3);
    const again = await report(vm?.hostId === c.id ? c : d, [domain('burst', uuid)]);
    expect(again.items.filter((v) => v.uuid === uuid).map((v) => [v.id, v.state])).toEqual([
      [vm?.id, 'RUNNING'],
    ]);
  });

  it('a deleted VM whose domain is reported again comes back as a new VM', async () => {
    const e = await registered('kvm-phoenix-e');
    const uuid = newUuid();
    const first = (await report(e, [domain('phoenix', uuid)])).items.find((v) => v.uuid === uuid);
    expect((await call('DELETE', `/vms/${first?.id}`, admin)).status).toBe(204);
    const second = (await report(e, [domain('phoenix', uuid)])).items.filter((v) => v.uuid === uuid);
    expect(second).toHaveLength(1);
    expect(second[0]?.id).not.toBe(first?.id);
    expect(second[0]?.state).toBe('RUNNING');
  });

  it('a host cannot take a VM another host still reports: that entry is refused, the rest applies', async () => {
    const uuid = newUuid();
    const onA = (await report(a, [domain('app', uuid)])).items.find((v) => v.uuid === uuid);
    const before = await withHistory(onA?.id ?? -1);

    const res = await report(b, [domain('app', uuid), domain('b-own', newUuid())]);
    expect(res.refused).toEqual([
      {
        domain: 'app',
        uuid,
        vmId: before.id,
        reason: `VM ${before.id} is RUNNING on host ${a.id}, which still reports it`,
      },
    ]);
    // B got its own VM, not A's.
    expect(res.items.map((v) => v.domain)).toEqual(['b-own']);
    expect(await vms.get(before.id)).toEqual(before);
    // POWEROFF on A is still A's: only GONE (or A OFFLINE/DISABLED) lets it go.
    await report(a, [domain('app', uuid, 'POWEROFF')]);
    expect((await report(b, [domain('app', uuid)])).refused).toHaveLength(1);
    expect((await vms.get(before.id)).hostId).toBe(a.id);
    await report(a, []);
    await report(b, []);
  });

  it('a VM moved to host B keeps its id, backups and schedules; its next backup is queued for B', async () => {
    const uuid = newUuid();
    const onA = (await report(a, [domain('mover', uuid)])).items.find((v) => v.uuid === uuid);
    const before = await withHistory(onA?.id ?? -1);
    const schedulesBefore = await schedulesOf(before.id);
    expect(schedulesBefore).toHaveLength(1);

    // Migrated: A no longer lists it (GONE), then B reports it, under another name even.
    await report(a, []);
    expect((await vms.get(before.id)).state).toBe('GONE');
    const onB = await report(b, [domain('mover-on-b', uuid)]);
    expect(onB.refused).toEqual([]);
    expect(onB.items.find((v) => v.uuid === uuid)).toMatchObject({
      id: before.id,
      hostId: b.id,
      domain: 'mover-on-b',
      state: 'RUNNING',
    });
    const after = await vms.get(before.id);
    expect(after.backups).toEqual(before.backups);
    expect(after.backups.BACKUP_IDS).toEqual([11, 12]);
    expect(after).toMatchObject({ owner: before.owner, group: before.group, name: before.name });
    expect(after.moves).toEqual([
      { from: a.id, to: b.id, at: expect.any(String), domain: 'mover', reason: 'GONE' },
    ]);
    expect(await schedulesOf(before.id)).toEqual(schedulesBefore);
    // A lists no VM of that UUID any more; A reporting it again is refused (it runs on B now).
    expect((await vmsOf(a)).some((v) => v.uuid === uuid)).toBe(false);
    expect((await report(a, [domain('mover', uuid)])).refused).toHaveLength(1);

    const queued = await call('POST', `/vms/${before.id}/backup`, { ...admin, body: { datastoreId } });
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ vmId: before.id, hostId: b.id, state: 'QUEUED' });
    await dequeue(queued.body.id);
    // Queued while it was on A (the request names A), admitted after the move: B's queue.
    const admitted = await admitBackup({
      executionId: queued.body.id,
      vmId: before.id,
      datastoreId,
      hostId: a.id,
    });
    expect(admitted.hostId).toBe(b.id);
    expect(admitted.queueUrl).toBe((await hosts.get(b.id)).queueUrl);
    // A request queued before requests named the host: the same (and a retry keeps its image).
    const old = await admitBackup({ executionId: queued.body.id, vmId: before.id, datastoreId });
    expect(old).toMatchObject({ hostId: b.id, imageId: admitted.imageId });
    await vms.update(before.id, {}, { remove: ['lock'] });
    await report(a, []);
    await report(b, []);
  });

  it('a VM of an OFFLINE or DISABLED host moves even though that host last saw it running', async () => {
    const uuid = newUuid();
    const onA = (await report(a, [domain('rescued', uuid)])).items.find((v) => v.uuid === uuid);
    await hosts.update(a.id, { state: 'OFFLINE' });
    const res = await report(b, [domain('rescued', uuid)]);
    expect(res.refused).toEqual([]);
    expect(await vms.get(onA?.id ?? -1)).toMatchObject({
      hostId: b.id,
      state: 'RUNNING',
      moves: [{ from: a.id, to: b.id, reason: 'OFFLINE', domain: 'rescued', at: expect.any(String) }],
    });
    await report(b, []);
    await report(a, []);
  });

  it('a VM a backup holds does not move until the backup ends', async () => {
    const uuid = newUuid();
    const onA = (await report(a, [domain('busy', uuid)])).items.find((v) => v.uuid === uuid);
    const id = onA?.id ?? -1;
    await vms.update(id, { lock: '4242' });
    await report(a, []);
    const locked = await vms.get(id);
    expect(locked).toMatchObject({ state: 'GONE', hostId: a.id, lock: '4242' });

    const waiting = await report(b, [domain('busy', uuid)]);
    expect(waiting.refused).toEqual([
      {
        domain: 'busy',
        uuid,
        vmId: id,
        reason: `VM ${id} has a backup in progress on host ${a.id} (execution 4242): it moves once the backup ends`,
      },
    ]);
    expect(await vms.get(id)).toEqual(locked);

    await vms.update(id, {}, { remove: ['lock'] });
    const moved = await report(b, [domain('busy', uuid)]);
    expect(moved.refused).toEqual([]);
    expect(await vms.get(id)).toMatchObject({ hostId: b.id, state: 'RUNNING' });
  });

  it('a backup queued before the VM moved is admitted on its new host', async () => {
    const uuid = newUuid();
    const onA = (await report(a, [domain('racer', uuid)])).items.find((v) => v.uuid === uuid);
    const id = onA?.id ?? -1;
    const queued = await call('POST', `/vms/${id}/backup`, { ...admin, body: { datastoreId } });
    expect(queued.status).toBe(202);
    expect(queued.body.hostId).toBe(a.id);
    // Moved between the queueing and the admission: the task goes where the VM is now.
    await report(a, []);
    await report(b, [domain('racer', uuid)]);
    await dequeue(queued.body.id);
    const admitted = await admitBackup({ executionId: queued.body.id, vmId: id, datastoreId });
    expect(admitted.hostId).toBe(b.id);
    // The lock an admission takes holds only on the host it read: one that read A fails.
    await expect(
      vms.update(id, { lock: 'late' }, { condition: lockCondition('late', a.id) }),
    ).rejects.toThrow(/conditional/i);
    expect((await vms.get(id)).lock).toBe(queued.body.id);
  });
});

/** The VM's schedules as the API shows them, without the answer's clock. */
async function schedulesOf(vmId: number): Promise<unknown[]> {
  const res = await call('GET', `/vms/${vmId}/schedules`, admin);
  expect(res.status).toBe(200);
  return res.body.items.map(({ now: _now, ...rest }: Record<string, unknown>) => rest);
}

/** The VMs recorded on `host`. */
async function vmsOf(host: RegisteredHost): Promise<VmView[]> {
  return (await vms.list()).filter((vm) => vm.hostId === host.id);
}

describe('local tables made before byUuid', () => {
  it('get the index they lack at the next start', async () => {
    const spec = TABLES.find((t) => t.key === 'vms');
    if (!spec) throw new Error('no vms table spec');
    // Signed with the local key the helper put in the environment.
    const client = new DynamoDBClient({ endpoint: plane.db.endpoint, region: 'us-east-1' });
    try {
      const name = 'lifeboat-vms-before-byuuid';
      const older = { ...spec, indexes: spec.indexes.filter((i) => i.name !== 'byUuid') };
      await client.send(new CreateTableCommand(createTableInput(older, name)));
      expect(await ensureIndexes(client, spec, name)).toEqual(['byUuid']);
      const table = (await client.send(new DescribeTableCommand({ TableName: name }))).Table;
      expect(table?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual(['byHost', 'byUuid']);
      expect(await ensureIndexes(client, spec, name)).toEqual([]);
    } finally {
      client.destroy();
    }
  });
});
