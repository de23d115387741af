/**
 * A datastore's scheduled verify (`lifeboat datastore sched add DSID --action verify`) on
 * DynamoDB Local: the routes (add, list, delete; a bad body is a 400 that creates nothing; a user
 * without the datastore's rights is refused), the dispatcher's firing (one verify execution per
 * stored backup of every READY image, none for LOCKED, ERROR or DELETING ones) and the pacing of
 * a run of many: each verify holds a MAX_BACKUPS_HOST slot, so the next starts when one ends.
 */
import { describe, expect, it } from 'vitest';
import type { Image } from '#core/model.ts';
import { dispatch } from '#functions/dispatcher/handler.ts';
import { fireDueSchedules } from '#functions/dispatcher/schedules.ts';
import { readCounter } from '#functions/repo/counters.ts';
import { executions } from '#functions/repo/executions.ts';
import { images } from '#functions/repo/images.ts';
import { pendingRequests } from '#functions/repo/requests.ts';
import { schedules } from '#functions/repo/schedules.ts';
import { handler as release } from '#functions/tasks/release.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-ds-schedules' };
const bob = { token: 'bob-token-ds-schedules' };
const MAINTENANCE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:Maintenance';

const plane = useControlPlane({
  name: 'dssched',
  env: {
    SCHEDULE_GROUP: undefined,
    BACKUP_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Backup',
    RESTORE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Restore',
    MAINTENANCE_STATE_MACHINE_ARN: MAINTENANCE_ARN,
    MAX_BACKUPS: '4',
    MAX_BACKUPS_HOST: '1',
    MONITOR_INTERVAL_MINUTES: '0',
  },
  sfn: true,
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw',
  inventory: [
    {
      domain: 'vm-a',
      state: 'RUNNING',
      disks: [{ id: 0, target: 'vda', source: '/images/a.qcow2', format: 'qcow2', size: 1000 }],
      nics: [],
      template: '<domain/>',
    },
  ],
});

/** An image of VM 1 on datastore 1 in `state`, stored as `source` (and `points` increments). */
async function image(id: number, state: Image['state'], source: string, points: string[] = []) {
  await images.put({
    owner: 'admin',
    group: 'users',
    permissions: 'um-------',
    id,
    name: `1-${id}`,
    type: 'BACKUP',
    vmId: 1,
    datastoreId: 1,
    state,
    mode: points.length ? 'INCREMENT' : 'FULL',
    source,
    size: 10,
    disks: [{ id: 0, size: 10, virtualSize: 1024, format: 'raw', file: 'disk.0.raw' }],
    template: '',
    // A chain's first point is its FULL (the image's own source), then its increments.
    increments: points.length
      ? [source, ...points].map((p, i) => ({
          id: i + 1,
          type: i === 0 ? ('FULL' as const) : ('INCREMENT' as const),
          source: p,
          size: 5,
          date: '2026-12-01T00:00:00Z',
        }))
      : [],
    createdAt: '2026-12-01T00:00:00Z',
  } as Image);
}

const allSchedules = async () => (await schedules.list()).length;

describe('datastore schedules: routes', () => {
  it('refuses a bad body with a clear 400 and creates nothing', async () => {
    await seedUser('bob', bob.token, 'user');
    const cases: [Record<string, unknown>, string][] = [
      [
        { time: '+60', action: 'backup' },
        `action: a datastore's schedule can verify or drill (got "backup")`,
      ],
      [{ time: '+60', action: 'scrub' }, 'action'],
      [{ time: '+60', datastoreId: 1 }, "datastoreId: a datastore's schedule acts on its own datastore"],
      [{ time: '+60', reset: true }, 'reset: only a backup starts a new chain'],
      [{ time: '+60', repeat: 'fortnightly' }, 'repeat: must be hourly, daily, weekly, monthly or cron'],
      [{ time: '2020-01-01T00:00:00Z' }, 'time: 2020-01-01T00:00:00Z is in the past'],
      [{ time: '+60', every: 3 }, 'every'],
    ];
    for (const [body, message] of cases) {
      const res = await call('POST', '/datastores/1/schedules', { ...admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe('ValidationError');
      expect(res.body.message).toContain(message);
    }
    // A VM's schedule cannot verify either.
    const vm = await call('POST', '/vms/1/schedules', {
      ...admin,
      body: { time: '+60', datastoreId: 1, action: 'verify' },
    });
    expect(vm.status).toBe(400);
    expect(vm.body.message).toContain("action: a VM's schedule can backup");
    expect(await allSchedules()).toBe(0);
    const missing = await call('POST', '/datastores/99/schedules', { ...admin, body: { time: '+60' } });
    expect(missing.status).toBe(404);
    expect(missing.body.message).toBe('Datastore 99 does not exist');
  });

  it('add, list and delete; a user without the rights is refused and changes nothing', async () => {
    const created = await call('POST', '/datastores/1/schedules', {
      ...admin,
      body: { time: '+60', action: 'verify', repeat: 'weekly', end: 4 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ target: 'datastore', targetId: 1, action: 'verify', runs: 0 });
    expect(created.body.description).toMatch(/^weekly on [A-Z]{3} at \d\d:\d\d UTC, 4 runs$/);
    expect(created.body.nextRuns).toHaveLength(3);
    const listed = await call('GET', '/datastores/1/schedules', admin);
    expect(listed.body.items.map((s: { id: number }) => s.id)).toEqual([created.body.id]);
    // The VM's schedules are not the datastore's (same id 1).
    expect((await call('GET', '/vms/1/schedules', admin)).body.items).toEqual([]);

    // bob has no right on datastore 1 (owner admin, 600): refused everywhere.
    for (const [method, path, body] of [
      ['GET', '/datastores/1/schedules', undefined],
      ['POST', '/datastores/1/schedules', { time: '+60', action: 'verify' }],
      ['DELETE', `/datastores/1/schedules/${created.body.id}`, undefined],
    ] as const) {
      const res = await call(method, path, { ...bob, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error).toBe('Forbidden');
    }
    // With USE (group bit) he may list them, still not add or delete one.
    expect(
      (await call('PUT', '/datastores/1/permissions', { ...admin, body: { permissions: '640' } })).status,
    ).toBe(200);
    expect((await call('GET', '/datastores/1/schedules', bob)).body.items).toHaveLength(1);
    const add = await call('POST', '/datastores/1/schedules', {
      ...bob,
      body: { time: '+60', action: 'verify' },
    });
    expect(add.status).toBe(403);
    expect((await call('DELETE', `/datastores/1/schedules/${created.body.id}`, bob)).status).toBe(403);
    expect(await allSchedules()).toBe(1);

    // Another target's schedule id is not found under the datastore.
    const vmSched = await call('POST', '/vms/1/schedules', {
      ...admin,
      body: { time: '+60', datastoreId: 1 },
    });
    const wrong = await call('DELETE', `/datastores/1/schedules/${vmSched.body.id}`, admin);
    expect(wrong.status).toBe(404);
    expect(wrong.body.message).toBe(`Schedule ${vmSched.body.id} does not exist on datastore 1`);
    expect((await call('DELETE', `/vms/1/schedules/${vmSched.body.id}`, admin)).status).toBe(204);

    expect((await call('DELETE', `/datastores/1/schedules/${created.body.id}`, admin)).status).toBe(204);
    expect(await allSchedules()).toBe(0);
  });
});

describe('datastore schedules: a due run', () => {
  it('queues a verify of every stored backup of each READY image, none of the others, paced by MAX_BACKUPS_HOST', async () => {
    await image(11, 'READY', 'snap-a');
    await image(12, 'READY', 'snap-b', ['snap-b1']);
    await image(13, 'LOCKED', 'snap-c');
    await image(14, 'ERROR', 'snap-d');
    await image(15, 'DELETING', 'snap-e');
    const created = await call('POST', '/datastores/1/schedules', {
      ...admin,
      body: { time: '+60', action: 'verify', repeat: 'daily' },
    });
    expect(created.status).toBe(201);
    const at = new Date(created.body.nextRunAt);
    expect(await fireDueSchedules(new Date(at.getTime() - 1000))).toEqual([]);
    expect(await fireDueSchedules(at)).toEqual([created.body.id]);

    const verifies = (await executions.list()).filter((e) => e.kind === 'verify');
    expect(
      verifies.map((e) => [e.imageId, e.params.backupId, e.state, e.hostId, e.requestedBy]).sort(),
    ).toEqual([
      [11, 'snap-a', 'QUEUED', 1, 'admin'],
      [12, 'snap-b', 'QUEUED', 1, 'admin'],
      [12, 'snap-b1', 'QUEUED', 1, 'admin'],
    ]);
    const fired = await schedules.get(created.body.id);
    expect(fired).toMatchObject({ runs: 1, lastExecutionId: expect.any(String) });
    expect(fired.lastError).toBeUndefined();
    expect(fired.nextRunAt).toBe(new Date(at.getTime() + 86_400_000).toISOString());

    // One slot on the host: one verify starts, the others wait in the queue.
    plane.sfn.calls.length = 0;
    const first = await dispatch();
    expect(first.started).toHaveLength(1);
    expect(first.waiting).toHaveLength(2);
    expect(plane.sfn.calls.map((c) => c.stateMachineArn)).toEqual([MAINTENANCE_ARN]);
    expect(await readCounter('active')).toBe(1);
    // It ends (Release): its slot comes back, and the next starts.
    const ended = first.started[0] ?? '';
    await executions.update(ended, { state: 'RUNNING', executionArn: 'arn:v1' });
    await release({ executionId: ended });
    expect(await readCounter('active')).toBe(0);
    const second = await dispatch();
    expect(second.started).toHaveLength(1);
    expect(second.waiting).toHaveLength(1);
    expect((await pendingRequests()).map((r) => r.kind)).toEqual(['verify']);
  });

  it('a drill schedule restores its sample of images, never verified first; a sample out of range is a 400', async () => {
    for (const [body, message] of [
      [{ time: '+60', action: 'verify', sample: 1001 }, /sample/],
      [{ time: '+60', action: 'drill', sample: 0 }, /sample/],
      [
        { time: '+60', action: 'drill', sample: 21 },
        /sample: a drill restores at most 20 images a run \(got 21\)/,
      ],
    ] as const) {
      const before = await allSchedules();
      const refused = await call('POST', '/datastores/1/schedules', { ...admin, body });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.error).toBe('ValidationError');
      expect(refused.body.message).toMatch(message);
      expect(await allSchedules()).toBe(before);
    }
    await images.update(11, { template: '<domain/>', verifiedAt: '2026-12-02T00:00:00Z' });
    await images.update(12, { template: '<domain/>' });
    const created = await call('POST', '/datastores/1/schedules', {
      ...admin,
      body: { time: '+60', action: 'drill', repeat: 'weekly' },
    });
    expect(created.status, created.raw).toBe(201);
    expect(created.body).toMatchObject({ action: 'drill', sample: 1 });
    expect(await fireDueSchedules(new Date(created.body.nextRunAt))).toEqual([created.body.id]);
    // Image 12 was never verified: its turn first; 11 (verified) and 13-15 (not READY) wait.
    const drilled = (await executions.list()).filter((e) => e.kind === 'drill');
    expect(drilled.map((e) => [e.imageId, e.state, e.requestedBy])).toEqual([[12, 'QUEUED', 'admin']]);
    expect((await schedules.get(created.body.id)).lastExecutionId).toBe(drilled[0]?.id);
    expect((await call('GET', '/drills?imageId=12', admin)).body.items).toEqual([
      expect.objectContaining({ imageId: 12, result: 'RUNNING', executionId: drilled[0]?.id }),
    ]);
    expect((await call('DELETE', `/datastores/1/schedules/${created.body.id}`, admin)).status).toBe(204);
  });

  it('a verify schedule with a sample reads back that many images a run, never verified first, then the least recently verified', async () => {
    // Image 11 was verified on 2026-12-02 (above); 12 never; 13-15 are not READY. The daily
    // verify of every image made above goes first: only this schedule runs here.
    for (const other of (await call('GET', '/datastores/1/schedules', admin)).body.items) {
      expect((await call('DELETE', `/datastores/1/schedules/${other.id}`, admin)).status).toBe(204);
    }
    const created = await call('POST', '/datastores/1/schedules', {
      ...admin,
      body: { time: '+60', action: 'verify', repeat: 'daily', sample: 1 },
    });
    expect(created.status, created.raw).toBe(201);
    expect(created.body).toMatchObject({ action: 'verify', sample: 1 });
    const verifiesOf = async (seen: Set<string>) =>
      (await executions.list())
        .filter((e) => e.kind === 'verify' && !seen.has(e.id))
        .map((e) => [e.imageId, e.params.backupId])
        .sort();
    const before = new Set((await executions.list()).map((e) => e.id));
    const first = new Date(created.body.nextRunAt);
    expect(await fireDueSchedules(first)).toEqual([created.body.id]);
    // Image 12's turn: both of its stored backups, and nothing of image 11.
    expect(await verifiesOf(before)).toEqual([
      [12, 'snap-b'],
      [12, 'snap-b1'],
    ]);
    // Verified since: the next run takes image 11, now the least recently verified.
    await images.update(12, { verifyState: 'OK', verifiedAt: '2026-12-05T00:00:00Z' });
    const afterFirst = new Set((await executions.list()).map((e) => e.id));
    expect(await fireDueSchedules(new Date(first.getTime() + 86_400_000))).toEqual([created.body.id]);
    expect(await verifiesOf(afterFirst)).toEqual([[11, 'snap-a']]);
    expect((await call('DELETE', `/datastores/1/schedules/${created.body.id}`, admin)).status).toBe(204);
  });

  it("a run with no host to verify on records why; deleting the datastore's images and it deletes its schedules", async () => {
    const created = await call('POST', '/datastores/1/schedules', {
      ...admin,
      body: { time: '+60', action: 'verify' },
    });
    await call('PATCH', '/datastores/1', { ...admin, body: { attributes: { BRIDGE_LIST: 'kvm-9' } } });
    const at = new Date(created.body.nextRunAt);
    expect(await fireDueSchedules(at)).toContain(created.body.id);
    const fired = await schedules.get(created.body.id);
    expect(fired.lastError).toContain("no MONITORED host of datastore 1's BRIDGE_LIST (kvm-9)");
    expect(fired.nextRunAt).toBeUndefined();

    for (const id of [11, 12, 13, 14, 15]) await images.delete(id);
    expect((await call('DELETE', '/datastores/1', admin)).status).toBe(204);
    expect(await allSchedules()).toBe(0);
  });
});
