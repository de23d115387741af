/**
 * Datastore quotas on DynamoDB Local: the routes (who reads, who sets), admission when a backup
 * is queued (refused before anything is written, with the numbers), concurrent requests at the
 * limit, the release of a reservation whose backup ended, the settlement at Commit with the real
 * size, and the release when the image record is deleted.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuotaEntry } from '#core/quota.ts';
import { tableName } from '#functions/env.ts';
import { endOperation } from '#functions/operations/end.ts';
import { deleteImageRecord, releaseReservation } from '#functions/operations/quota.ts';
import { datastores } from '#functions/repo/datastores.ts';
import { executions } from '#functions/repo/executions.ts';
import { images } from '#functions/repo/images.ts';
import { dequeue, pendingRequests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { dynamo } from '#platform/aws.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';
import { hostBody } from '../helpers/host-key.ts';

const MiB = 1024 ** 2;
const TOKENS = {
  admin: 'lb_quota-admin-0123456789abcdef',
  alice: 'lb_quota-alice-0123456789abcdef',
  bob: 'lb_quota-bob-0123456789abcdef00',
  carol: 'lb_quota-carol-0123456789abcdef',
};
type Who = keyof typeof TOKENS;
/** VM ids by name (`q0`..`q15`), each one 10 MiB disk. */
const vmIds = new Map<string, number>();

const as = (who: Who, method: string, path: string, body?: unknown) =>
  call(method, path, { token: TOKENS[who], body });
const vm = (n: number) => vmIds.get(`q${n}`) as number;

/** The user's (or group's) entries by datastore ('all', 1, 2). */
async function usage(path: string): Promise<Record<string, QuotaEntry>> {
  const res = await as('admin', 'GET', path);
  expect(res.status, res.raw).toBe(200);
  return Object.fromEntries((res.body.entries as QuotaEntry[]).map((e) => [String(e.datastore), e]));
}

async function setQuota(path: string, body: unknown): Promise<void> {
  const res = await as('admin', 'PUT', path, body);
  expect(res.status, res.raw).toBe(200);
}

async function counter(name: string): Promise<Record<string, unknown> | undefined> {
  const out = await dynamo().send(
    new GetCommand({ TableName: tableName('counters'), Key: { name }, ConsistentRead: true }),
  );
  return out.Item;
}

useControlPlane({
  name: 'quota',
  env: {
    BACKUP_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Backup',
    MAX_BACKUPS: '50',
    MAX_BACKUPS_HOST: '50',
  },
  sfn: true,
  admin: { token: TOKENS.admin, group: 'admin' },
});
beforeAll(async () => {
  for (const group of ['web', 'other'])
    expect((await as('admin', 'POST', '/groups', { name: group })).status).toBe(201);
  await seedUser('alice', TOKENS.alice, 'user', 'web');
  await seedUser('bob', TOKENS.bob, 'user', 'web');
  await seedUser('carol', TOKENS.carol, 'user', 'other');
  expect((await as('admin', 'POST', '/hosts', hostBody('kvm-q'))).status).toBe(201);
  for (const name of ['one', 'two']) {
    const ds = await as('admin', 'POST', '/datastores', {
      name,
      driver: 'restic',
      attributes: { RESTIC_PASSWORD: 'pw-quota' },
    });
    expect(ds.status).toBe(201);
    // Everyone may back up to it (USE for group and others).
    await datastores.update(ds.body.id, { permissions: 'uma---u--' });
  }
  const domains = Array.from({ length: 16 }, (_, i) => ({
    domain: `q${i}`,
    state: 'RUNNING',
    disks: [
      {
        id: 0,
        target: 'vda',
        source: `/images/q${i}.qcow2`,
        format: 'qcow2',
        size: 10 * MiB,
        canIncrement: true,
      },
    ],
    nics: [],
    template: `<domain><name>q${i}</name></domain>`,
  }));
  const inventory = await as('admin', 'PUT', '/hosts/1/inventory', { vms: domains });
  expect(inventory.status).toBe(200);
  for (const v of inventory.body.items as { id: number; domain: string }[]) {
    vmIds.set(v.domain, v.id);
    // q15 stays admin's; q14 is bob's; the others alice's.
    if (v.domain === 'q15') continue;
    const owner = v.domain === 'q14' ? 'bob' : 'alice';
    await vms.update(v.id, { owner, group: 'web', permissions: 'uma------' });
  }
});

describe('quota routes', () => {
  it('show usage against limits: a user their own, a member their group, admins anyone', async () => {
    const own = await as('alice', 'GET', '/users/alice/quota');
    expect(own.status, own.raw).toBe(200);
    expect(own.body).toMatchObject({ kind: 'user', name: 'alice', exempt: false });
    expect(own.body.entries).toEqual(
      ['all', 1, 2].map((datastore) => ({
        datastore,
        size: { used: 0, limit: -1 },
        images: { used: 0, limit: -1 },
      })),
    );
    expect((await as('bob', 'GET', '/groups/web/quota')).status).toBe(200);
    expect((await as('admin', 'GET', '/users/admin/quota')).body.exempt).toBe(true);
    expect((await as('admin', 'GET', '/groups/admin/quota')).body.exempt).toBe(true);
    expect((await as('admin', 'GET', '/groups/web/quota')).body.exempt).toBe(false);
    for (const [who, path] of [
      ['bob', '/users/alice/quota'],
      ['carol', '/groups/web/quota'],
    ] as const) {
      const refused = await as(who, 'GET', path);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('Forbidden');
    }
  });

  it('are set by admins only, with clear 4xx for bad input, and nothing changed', async () => {
    const refused = await as('alice', 'PUT', '/users/alice/quota', { pairs: { SIZE: '99999' } });
    expect(refused.status).toBe(403);
    const bad: [unknown, number, RegExp][] = [
      [{ pairs: { VMS: '1' } }, 400, /unknown key "VMS"/],
      [{ pairs: { SIZE: '1.5' } }, 400, /SIZE must be a whole number/],
      [{ pairs: {} }, 400, /give SIZE/],
      [{ datastoreId: 77, pairs: { SIZE: '1' } }, 404, /Datastore 77/],
    ];
    for (const [body, status, message] of bad) {
      const res = await as('admin', 'PUT', '/users/alice/quota', body);
      expect(res.status, res.raw).toBe(status);
      expect(res.body.message).toMatch(message);
    }
    expect((await as('admin', 'PUT', '/users/nobody/quota', { pairs: { SIZE: '1' } })).status).toBe(404);
    expect((await as('admin', 'PUT', '/groups/nogroup/quota', { pairs: { SIZE: '1' } })).status).toBe(404);
    expect(await counter('quota:user:alice:ds:all')).toBeUndefined();
    expect((await usage('/users/alice/quota')).all?.size.limit).toBe(-1);
  });
});

describe('admission', () => {
  it('refuses a backup that cannot fit before it is queued, with the numbers', async () => {
    await setQuota('/users/alice/quota', { datastoreId: 1, pairs: { SIZE: '25', IMAGES: '5' } });
    const first = await as('alice', 'POST', `/vms/${vm(0)}/backup`, { datastoreId: 1 });
    const second = await as('admin', 'POST', `/vms/${vm(1)}/backup`, { datastoreId: 1 });
    expect([first.status, second.status]).toEqual([202, 202]);
    expect((await executions.get(first.body.id)).params.quota).toEqual({
      user: 'alice',
      group: 'web',
      datastoreId: 1,
      sizeMiB: 10,
      images: 1,
    });
    const pending = (await pendingRequests()).length;
    const executionsBefore = (await executions.list()).length;
    const refused = await as('alice', 'POST', `/vms/${vm(2)}/backup`, { datastoreId: 1 });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      error: 'Forbidden',
      message:
        'quota exceeded: user alice on datastore 1: SIZE 20 of 25 MiB used, this backup needs about 10 MiB',
    });
    expect((await pendingRequests()).length).toBe(pending);
    expect((await executions.list()).length).toBe(executionsBefore);
    expect(await counter(`queued:vm:${vm(2)}`)).toBeUndefined();
    const alice = await usage('/users/alice/quota');
    expect(alice['1']).toEqual({
      datastore: 1,
      size: { used: 20, limit: 25 },
      images: { used: 2, limit: 5 },
    });
    expect(alice.all).toEqual({
      datastore: 'all',
      size: { used: 20, limit: -1 },
      images: { used: 2, limit: -1 },
    });
    expect((await usage('/groups/web/quota')).all?.size.used).toBe(20);
    // Another datastore has no limit.
    expect((await as('alice', 'POST', `/vms/${vm(2)}/backup`, { datastoreId: 2 })).status).toBe(202);
  });

  it('gives a reservation back once when its backup ends without a commit', async () => {
    const id = (await executions.list()).find((e) => e.vmId === vm(1))?.id as string;
    const record = await executions.get(id);
    await endOperation(record, { state: 'ABORTED', endedAt: new Date().toISOString() }, { heldSlot: false });
    await releaseReservation(record);
    await endOperation(record, { state: 'ABORTED', endedAt: new Date().toISOString() }, { heldSlot: false });
    expect((await usage('/users/alice/quota'))['1']?.size.used).toBe(10);
    expect((await executions.get(id)).params.quotaSettled).toBe('released');
  });

  it('counts every member against a group limit for all datastores', async () => {
    await setQuota('/groups/web/quota', { pairs: { IMAGES: '3' } });
    // Group web holds 2 images (q0 to ds 1, q2 to ds 2): bob's fits, alice's next does not.
    expect((await as('bob', 'POST', `/vms/${vm(14)}/backup`, { datastoreId: 2 })).status).toBe(202);
    const refused = await as('alice', 'POST', `/vms/${vm(3)}/backup`, { datastoreId: 2 });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toBe(
      'quota exceeded: group web on all datastores: IMAGES 3 of 3 used, this backup makes 1 more',
    );
    await setQuota('/groups/web/quota', { pairs: { IMAGES: '-1' } });
    expect((await usage('/groups/web/quota')).all?.images).toEqual({ used: 3, limit: -1 });
  });

  it('charges nothing for an admin-owned VM', async () => {
    const res = await as('admin', 'POST', `/vms/${vm(15)}/backup`, { datastoreId: 1 });
    expect(res.status).toBe(202);
    expect((await executions.get(res.body.id)).params.quota).toBeUndefined();
    expect(await counter('quota:user:admin:ds:1')).toBeUndefined();
  });

  it('never overshoots with concurrent requests at the limit', async () => {
    await setQuota('/users/alice/quota', { datastoreId: 2, pairs: { SIZE: '40' } });
    // Alice holds 10 MiB on datastore 2 (q2): room for 3 more of 10 MiB among 9 at once.
    const racing = [4, 5, 6, 7, 8, 9, 10, 11, 12];
    const answers = await Promise.all(
      racing.map((n) => as(n % 2 ? 'admin' : 'alice', 'POST', `/vms/${vm(n)}/backup`, { datastoreId: 2 })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses, answers.map((a) => a.raw).join('\n')).toEqual([
      202, 202, 202, 403, 403, 403, 403, 403, 403,
    ]);
    for (const a of answers.filter((x) => x.status === 403))
      expect(a.body.message).toMatch(/^quota exceeded/);
    expect((await usage('/users/alice/quota'))['2']?.size).toEqual({ used: 40, limit: 40 });
    const racingVms = racing.map((n) => vm(n));
    const queued = (await executions.list()).filter((e) => racingVms.includes(e.vmId as number));
    expect(
      queued.map((e) => e.id).sort(),
      JSON.stringify(answers.map((a) => [a.status, a.body?.id])),
    ).toEqual(
      answers
        .filter((a) => a.status === 202)
        .map((a) => a.body.id)
        .sort(),
    );
  });
});

describe('settlement', () => {
  it('charges the real size at Commit and gives it back when the image record goes', async () => {
    const id = (await executions.list()).find((e) => e.vmId === vm(0))?.id as string;
    const input = { executionId: id, vmId: vm(0), datastoreId: 1, reset: false };
    const admit = await admitBackup(input);
    const host = {
      backupId: 'snap-q0',
      disks: [{ id: 0, size: 3 * MiB, virtualSize: 10 * MiB, format: 'raw', file: 'disk.0' }],
      increment: null,
      template: '<domain/>',
      durationMs: 5,
    };
    await commitBackup({ ...input, admit, host });
    await commitBackup({ ...input, admit, host }); // a retry settles nothing twice
    // A failure after the commit gives nothing back.
    await releaseReservation(await executions.get(id));
    const image = await images.get(admit.imageId);
    expect(image.quota).toEqual({ user: 'alice', group: 'web', sizeMiB: 3 });
    // Datastore 1 held q0's 10 MiB reservation (q1's went back): now its 3 real MiB.
    expect((await usage('/users/alice/quota'))['1']).toEqual({
      datastore: 1,
      size: { used: 3, limit: 25 },
      images: { used: 1, limit: 5 },
    });
    const deleting = await images.update(image.id, { state: 'DELETING' });
    const condition = { expression: '#s = :s', names: { '#s': 'state' }, values: { ':s': 'DELETING' } };
    await deleteImageRecord(deleting, condition);
    await expect(deleteImageRecord(deleting, condition)).rejects.toMatchObject({
      name: 'ConditionalCheckFailedException',
    });
    expect(await images.find(image.id)).toBeUndefined();
    const after = await usage('/users/alice/quota');
    expect(after['1']).toEqual({ datastore: 1, size: { used: 0, limit: 25 }, images: { used: 0, limit: 5 } });
    expect((await usage('/groups/web/quota'))['1']?.size.used).toBe(0);
  });
});

describe('an increment chain', () => {
  /** Queue a backup of q13 (alice's) to datastore 1, take it off the queue, admit it. */
  async function admitted() {
    const res = await as('alice', 'POST', `/vms/${vm(13)}/backup`, { datastoreId: 1 });
    expect(res.status, res.raw).toBe(202);
    await dequeue(res.body.id);
    const input = { executionId: res.body.id as string, vmId: vm(13), datastoreId: 1, reset: false };
    return { input, admit: await admitBackup(input) };
  }
  const written = (backupId: string, mib: number, increment: object, chainReset: string | null = null) => ({
    backupId,
    disks: [{ id: 0, size: mib * MiB, virtualSize: 10 * MiB, format: 'qcow2', file: `${backupId}.qcow2` }],
    increment,
    chainReset,
    template: '<domain/>',
    durationMs: 5,
  });
  const onDs1 = async () => (await usage('/users/alice/quota'))['1'];

  it('charges the chain one image and each point its size; a chain the runner could not follow starts its own charge', async () => {
    await setQuota('/users/alice/quota', { datastoreId: 1, pairs: { SIZE: '25', IMAGES: '5' } });
    expect(
      (await as('admin', 'PUT', `/vms/${vm(13)}/backup-config`, { pairs: { MODE: 'INCREMENT' } })).status,
    ).toBe(200);
    const full = await admitted();
    const chainId = full.admit.imageId;
    await commitBackup({ ...full.input, admit: full.admit, host: written('s0', 2, { id: 0, parent: null }) });
    expect(await onDs1()).toMatchObject({ size: { used: 2 }, images: { used: 1 } });

    const next = await admitted();
    // An increment reserves its estimate but no image.
    expect((await executions.get(next.input.executionId)).params.quota).toMatchObject({
      sizeMiB: 10,
      images: 0,
    });
    await commitBackup({ ...next.input, admit: next.admit, host: written('s1', 1, { id: 1, parent: 0 }) });
    expect((await images.get(chainId)).quota).toEqual({ user: 'alice', group: 'web', sizeMiB: 3 });
    expect(await onDs1()).toMatchObject({ size: { used: 3 }, images: { used: 1 } });

    const reset = await admitted();
    const host = written('s2', 4, { id: 0, parent: null }, 'no bitmap (disk replaced?)');
    await commitBackup({ ...reset.input, admit: reset.admit, host });
    await commitBackup({ ...reset.input, admit: reset.admit, host });
    const freshId = (await executions.get(reset.input.executionId)).imageId as number;
    expect(freshId).not.toBe(chainId);
    expect((await images.get(freshId)).quota).toEqual({ user: 'alice', group: 'web', sizeMiB: 4 });
    expect((await images.get(chainId)).quota?.sizeMiB).toBe(3);
    expect(await onDs1()).toMatchObject({ size: { used: 7 }, images: { used: 2 } });
  });
});
