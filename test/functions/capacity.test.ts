/**
 * Datastore capacity on DynamoDB Local: what a monitor's answer records (figures, unknown ones
 * removed rather than 0, a sample for the history), the monitors Lifeboat queues by itself
 * (periodic, after a backup, on request; never two waiting), admission refusing a backup larger
 * than FREE before anything is queued, and LAST_BACKUP_ID / LAST_BACKUP_SIZE set at commit.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertRoomForBackup, queueDueMonitors, queueMonitor } from '#functions/operations/capacity.ts';
import { capacitySample, writeCapacitySample } from '#functions/repo/capacity.ts';
import { datastores } from '#functions/repo/datastores.ts';
import { executions } from '#functions/repo/executions.ts';
import { pendingRequests, requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as commitMaintenance } from '#functions/tasks/commit-maintenance.ts';
import { call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const MiB = 1024 * 1024;
const admin = { token: 'admin-token-capacity' };

const domain = (name: string, allocated: number) => ({
  domain: name,
  state: 'RUNNING',
  disks: [
    { id: 0, target: 'vda', source: `/images/${name}.qcow2`, format: 'qcow2', size: 10_000 * MiB, allocated },
  ],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
});

/** Answers a monitor execution as the host would, through CommitMaintenance. */
/** The host's answer committed, then the execution ended as the state machine ends it. */
async function answerMonitor(executionId: string, host: unknown) {
  const { input } = await requests.get(executionId);
  const out = await commitMaintenance({ ...(input as Record<string, unknown>), host } as never);
  await executions.update(executionId, { state: 'SUCCEEDED' });
  return out;
}

/** Monitors waiting in the queue, by datastore. */
async function queuedMonitors(datastoreId: number) {
  return (await pendingRequests()).filter((r) => r.kind === 'monitor' && r.datastoreId === datastoreId);
}

useControlPlane({
  name: 'capacity',
  env: {
    MAINTENANCE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Maintenance',
    MONITOR_INTERVAL_MINUTES: undefined,
  },
  admin,
  hosts: ['kvm-cap'],
});
beforeAll(async () => {
  for (const name of ['small', 'big']) {
    const ds = await call('POST', '/datastores', {
      ...admin,
      body: { name, driver: 'restic', attributes: { RESTIC_PASSWORD: 'pw' } },
    });
    expect(ds.status).toBe(201);
  }
  const inventory = await call('PUT', '/hosts/1/inventory', {
    ...admin,
    body: { vms: [domain('vm-200m', 200 * MiB), domain('vm-20m', 20 * MiB)] },
  });
  expect(inventory.status).toBe(200);
});
beforeEach(async () => {
  // Nothing left waiting from the test before: each starts with an empty queue.
  for (const r of await pendingRequests()) {
    await requests.update(r.id, {}, { remove: ['queue'] });
    await executions.update(r.id, { state: 'SUCCEEDED' });
  }
});

describe('a monitor answer', () => {
  it('sets TOTAL/FREE/USED and when; an unknown figure is removed, never 0; each answer is a sample', async () => {
    const queued = await call('POST', '/datastores/1/monitor', admin);
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ kind: 'monitor', state: 'QUEUED', datastoreId: 1 });
    await answerMonitor(queued.body.id, { totalBytes: 1000 * MiB, freeBytes: 100 * MiB, usedBytes: 7 * MiB });
    let ds = (await call('GET', '/datastores/1', admin)).body;
    expect(ds).toMatchObject({ totalBytes: 1000 * MiB, freeBytes: 100 * MiB, usedBytes: 7 * MiB });
    expect(Date.parse(ds.monitoredAt)).toBeGreaterThan(Date.now() - 60_000);

    // An rsync-only server: the filesystem is unknown. Not 0 (which reads as full): absent.
    const again = await call('POST', '/datastores/1/monitor', admin);
    expect(again.status).toBe(202);
    await answerMonitor(again.body.id, { totalBytes: null, freeBytes: null, usedBytes: 9 * MiB });
    ds = (await call('GET', '/datastores/1', admin)).body;
    expect(ds.totalBytes).toBeUndefined();
    expect(ds.freeBytes).toBeUndefined();
    expect(ds.usedBytes).toBe(9 * MiB);

    const history = await call('GET', '/datastores/1/capacity', admin);
    expect(history.status).toBe(200);
    expect(history.body.items).toEqual([
      expect.objectContaining({
        datastoreId: 1,
        totalBytes: 1000 * MiB,
        freeBytes: 100 * MiB,
        usedBytes: 7 * MiB,
      }),
      { datastoreId: 1, at: expect.any(String), usedBytes: 9 * MiB, executionId: again.body.id },
    ]);
    expect(
      (await call('GET', '/datastores/1/capacity?since=2999-01-01T00:00:00Z', admin)).body.items,
    ).toEqual([]);
    expect((await call('GET', '/datastores/1/capacity?since=yesterday', admin)).status).toBe(400);
  });

  it('a retried commit of the same answer leaves one sample, not two', async () => {
    const samples = async () => (await call('GET', '/datastores/1/capacity', admin)).body.items as unknown[];
    const before = (await samples()).length;
    const queued = await call('POST', '/datastores/1/monitor', admin);
    // The figures of the answer before: the datastore reads as it did.
    const answer = { totalBytes: null, freeBytes: null, usedBytes: 9 * MiB };
    await answerMonitor(queued.body.id, answer);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await answerMonitor(queued.body.id, answer);
    const after = await samples();
    expect(after).toHaveLength(before + 1);
    expect(after.at(-1)).toEqual({
      datastoreId: 1,
      at: expect.any(String),
      usedBytes: 9 * MiB,
      executionId: queued.body.id,
    });
  });

  it('history: past `limit`, the newest samples, still oldest first', async () => {
    const hour = 3_600_000;
    const start = Date.parse('2026-11-01T00:00:00.000Z');
    for (let i = 0; i < 5; i++) {
      const sample = capacitySample(
        2,
        { totalBytes: 1000, freeBytes: 100 * i, usedBytes: i },
        start + i * hour,
      );
      await writeCapacitySample(sample);
    }
    const page = await call('GET', '/datastores/2/capacity?since=2026-10-01T00:00:00Z&limit=2', admin);
    expect(page.status).toBe(200);
    expect(page.body.items.map((s: { usedBytes: number }) => s.usedBytes)).toEqual([3, 4]);
    const all = await call('GET', '/datastores/2/capacity?since=2026-10-01T00:00:00Z', admin);
    expect(all.body.items.map((s: { at: string }) => s.at)).toEqual(
      [0, 1, 2, 3, 4].map((i) => new Date(start + i * hour).toISOString()),
    );
  });

  it('refuses a malformed answer and records nothing', async () => {
    const queued = await call('POST', '/datastores/2/monitor', admin);
    await expect(
      answerMonitor(queued.body.id, { totalBytes: -1, freeBytes: 1, usedBytes: 1 }),
    ).rejects.toThrow();
    expect((await datastores.get(2)).monitoredAt).toBeUndefined();
  });
});

describe('monitors Lifeboat queues', () => {
  it('never two waiting for one datastore: a request while one is queued answers that one (200)', async () => {
    const first = await call('POST', '/datastores/2/monitor', admin);
    expect(first.status).toBe(202);
    const second = await call('POST', '/datastores/2/monitor', admin);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(await queuedMonitors(2)).toHaveLength(1);
  });

  it('periodic: due once MONITOR_INTERVAL_MINUTES has passed since the last, not before; 0 turns it off', async () => {
    const now = Date.now();
    // The last monitor of each datastore was just queued (tests above): none due now.
    expect(await queueDueMonitors(now)).toEqual([]);
    const later = await queueDueMonitors(now + 11 * 60_000);
    expect(later).toHaveLength(2);
    expect((await executions.get(later[0] as string)).requestedBy).toBe('lifeboat:monitor');
    // Waiting in the queue: the next tick queues no second one.
    expect(await queueDueMonitors(now + 30 * 60_000)).toEqual([]);
    process.env.MONITOR_INTERVAL_MINUTES = '0';
    try {
      for (const r of await pendingRequests()) await requests.update(r.id, {}, { remove: ['queue'] });
      for (const id of later) await executions.update(id, { state: 'SUCCEEDED' });
      expect(await queueDueMonitors(now + 60 * 60_000)).toEqual([]);
    } finally {
      delete process.env.MONITOR_INTERVAL_MINUTES;
    }
  });

  it('after each backup; with LAST_BACKUP_ID and LAST_BACKUP_SIZE of that backup on the VM', async () => {
    await datastores.update(2, {}, { remove: ['freeBytes', 'totalBytes', 'usedBytes'] });
    const res = await call('POST', '/vms/2/backup', { ...admin, body: { datastoreId: 2 } });
    expect(res.status).toBe(202);
    const input = { executionId: res.body.id, vmId: 2, datastoreId: 2, reset: false };
    await requests.update(res.body.id, {}, { remove: ['queue'] });
    await executions.update(res.body.id, { hostId: 1 });
    const admitted = await admitBackup(input);
    const host = {
      backupId: 'snap-cap-1',
      disks: [{ id: 0, size: 12_345, virtualSize: 10_000 * MiB, format: 'qcow2', file: 'disk.0.qcow2' }],
      increment: null,
      template: '<domain/>',
      durationMs: 1,
    };
    await commitBackup({ ...input, admit: admitted, host });
    const config = (await vms.get(2)).backups.BACKUP_CONFIG;
    expect(config).toMatchObject({ LAST_BACKUP_ID: 'snap-cap-1', LAST_BACKUP_SIZE: '12345' });
    expect(config.LAST_DATASTORE_ID).toBeUndefined();
    const monitors = await queuedMonitors(2);
    expect(monitors).toHaveLength(1);
    expect(monitors[0]).toMatchObject({ hostId: 1, kind: 'monitor' });
  });

  it('a queued monitor with no usable host is a clear 409', async () => {
    const ds = await datastores.get(1);
    await expect(queueMonitor({ ...ds, attributes: { BRIDGE_LIST: 'nowhere' } })).rejects.toThrow(
      /no MONITORED host of datastore 1's BRIDGE_LIST/,
    );
  });
});

describe('admission', () => {
  it('refuses a backup whose estimate exceeds FREE, with the numbers, and queues nothing', async () => {
    await datastores.update(1, {
      totalBytes: 1000 * MiB,
      freeBytes: 100 * MiB,
      monitoredAt: '2026-12-06T10:00:00.000Z',
    });
    const before = (await pendingRequests()).length;
    const refused = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe('Conflict');
    expect(refused.body.message).toBe(
      'datastore 1 has 100 MiB free (measured 2026-12-06T10:00:00.000Z); the FULL backup of VM 1 (disks 0) ' +
        `needs about 200 MiB (${200 * MiB} bytes, ${100 * MiB} free)`,
    );
    expect(await pendingRequests()).toHaveLength(before);
    expect((await vms.get(1)).backups.BACKUP_CONFIG.LAST_DATASTORE_ID).toBeUndefined();
    // Its guard was never taken: once there is room, the same VM queues at once.
    await datastores.update(1, { freeBytes: 300 * MiB });
    expect((await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } })).status).toBe(202);
  });

  it('checks the datastore the caller read already, without reading it again', async () => {
    const estimate = { kind: 'FULL', diskIds: [0], bytes: 2 * MiB } as const;
    // Datastore 99 is in no table: the check can only have used the one given.
    const given = { ...(await datastores.get(1)), id: 99, freeBytes: MiB };
    await expect(assertRoomForBackup(1, estimate, { datastoreId: 99, datastore: given })).rejects.toThrow(
      /^datastore 99 has 1 MiB free/,
    );
  });

  it('admits what fits, and anything while FREE is unknown', async () => {
    await datastores.update(1, { freeBytes: 100 * MiB });
    expect((await call('POST', '/vms/2/backup', { ...admin, body: { datastoreId: 1 } })).status).toBe(202);
    await datastores.update(1, {}, { remove: ['freeBytes'] });
    for (const r of await pendingRequests()) {
      await requests.update(r.id, {}, { remove: ['queue'] });
      await executions.update(r.id, { state: 'SUCCEEDED' });
    }
    await vms.update(1, { state: 'RUNNING' });
    expect((await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } })).status).toBe(202);
  });
});
