/**
 * Restore drills on DynamoDB Local: `POST /images/{id}/verify` with `{ restore: true }` queues
 * one drill execution and writes its report RUNNING; Admit hands the runner every point with its
 * recorded sha256 and the template (never a domain name); Commit records OK with points, bytes
 * and seconds, MarkFailed FAILED with the message, each on the image too; `GET /drills` and
 * `GET /drills/{id}` show reports to whoever may use the image; bad requests change nothing.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Task } from '#core/contracts/tasks.ts';
import { drills } from '#functions/repo/drills.ts';
import { executions } from '#functions/repo/executions.ts';
import { images } from '#functions/repo/images.ts';
import { requests } from '#functions/repo/requests.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as admitMaintenance } from '#functions/tasks/admit-maintenance.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as commitMaintenance } from '#functions/tasks/commit-maintenance.ts';
import { handler as markFailed } from '#functions/tasks/mark-failed.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-drill' };
const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const TEMPLATE =
  "<domain type='kvm'><name>vm-a</name><devices><interface type='network'><source network='default'/></interface></devices></domain>";

useControlPlane({
  name: 'drill',
  env: { MONITOR_INTERVAL_MINUTES: '0' },
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw',
  inventory: [
    {
      domain: 'vm-a',
      state: 'RUNNING',
      disks: [
        { id: 0, target: 'vda', source: '/images/a.qcow2', format: 'qcow2', size: 1000, canIncrement: true },
      ],
      nics: [],
      template: TEMPLATE,
    },
  ],
});

/** One verified backup of VM 1 through Admit and Commit; answers its image id. */
async function backup(backupId: string): Promise<number> {
  const res = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } });
  expect(res.status).toBe(202);
  await requests.update(res.body.id, {}, { remove: ['queue'] });
  await executions.update(res.body.id, { hostId: 1 });
  const input = { executionId: res.body.id as string, vmId: 1, datastoreId: 1, reset: false };
  const admitted = await admitBackup(input);
  const host = {
    backupId,
    disks: [
      { id: 0, size: 100, virtualSize: 1000, format: 'raw', file: 'disk.0.raw', sha256: sha(backupId) },
    ],
    verifiedAt: '2026-12-06T16:00:00.000Z',
    increment: null,
    template: TEMPLATE,
    durationMs: 1,
  };
  await commitBackup({ ...input, admit: admitted, host });
  return admitted.imageId;
}

async function machineInput(executionId: string) {
  return (await requests.get(executionId)).input as Record<string, unknown> & { executionId: string };
}

describe('restore drills', () => {
  it('queues a drill with its report; Admit hands every point with its sha256; Commit records OK on the report and the image', async () => {
    const imageId = await backup('d1d2d3d4e5f60701');
    const res = await call('POST', `/images/${imageId}/verify`, { ...admin, body: { restore: true } });
    expect(res.status).toBe(202);
    const { drill, executions: queued } = res.body;
    expect(drill).toMatchObject({
      imageId,
      vmId: 1,
      datastoreId: 1,
      hostId: 1,
      result: 'RUNNING',
      requestedBy: 'admin',
    });
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ kind: 'drill', state: 'QUEUED', imageId, id: drill.executionId });
    expect(await drills.get(drill.id)).toEqual(drill);

    const input = await machineInput(queued[0].id);
    const admitted = await admitMaintenance(input);
    const task = Task.parse({ ...admitted.task, taskId: `${queued[0].id}/RunOnHost`, token: 't' });
    expect(task).toMatchObject({
      kind: 'drill',
      drillId: drill.id,
      imageId,
      vmId: 1,
      latestOnly: false,
      points: [
        {
          backupId: 'd1d2d3d4e5f60701',
          disks: [{ id: 0, file: 'disk.0.raw', sha256: sha('d1d2d3d4e5f60701') }],
        },
      ],
      template: TEMPLATE,
    });
    // The runner builds the domain name itself: the message names none.
    expect(JSON.stringify(admitted.task)).not.toContain('lifeboat-drill-');
    expect((await drills.get(drill.id)).startedAt).toBeDefined();

    await commitMaintenance({
      ...input,
      admit: admitted,
      host: { points: 1, bytes: 12345, disks: [{ id: 0, size: 1000 }], durationMs: 2500 },
    });
    const done = await drills.get(drill.id);
    expect(done).toMatchObject({ result: 'OK', points: 1, bytes: 12345, seconds: 2.5 });
    expect(done.endedAt).toBeDefined();
    expect(await images.get(imageId)).toMatchObject({ verifyState: 'OK' });
    expect(await executions.get(queued[0].id)).toMatchObject({ bytesDone: 12345 });

    const listed = await call('GET', '/drills', admin);
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((d: { id: number }) => d.id)).toContain(drill.id);
    const shown = await call('GET', `/drills/${drill.id}`, admin);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ id: drill.id, result: 'OK', points: 1 });
  });

  it('latestOnly reaches the task; a failure leaves the report and the image FAILED with the message', async () => {
    const imageId = await backup('d1d2d3d4e5f60702');
    const res = await call('POST', `/images/${imageId}/verify`, {
      ...admin,
      body: { restore: true, latestOnly: true },
    });
    expect(res.status).toBe(202);
    const { drill } = res.body;
    const input = await machineInput(drill.executionId);
    const admitted = await admitMaintenance(input);
    expect(admitted.task).toMatchObject({ kind: 'drill', latestOnly: true });
    const cause =
      'datastore 1: disk 0: disk.0.raw of backup d1d2d3d4e5f60702 restored with sha256 00, not the ab recorded at backup time';
    await markFailed({ ...input, error: { Error: 'BackupVerifyFailed', Cause: cause } });
    expect(await drills.get(drill.id)).toMatchObject({
      result: 'FAILED',
      error: `BackupVerifyFailed: ${cause}`,
      latestOnly: true,
    });
    expect(await images.get(imageId)).toMatchObject({
      verifyState: 'FAILED',
      verifyError: expect.stringContaining('disk 0: disk.0.raw'),
    });
  });

  it('a drill cancelled before it ran: its report ends FAILED saying so, the image keeps its verifyState', async () => {
    const imageId = await backup('d1d2d3d4e5f60704');
    const res = await call('POST', `/images/${imageId}/verify`, { ...admin, body: { restore: true } });
    const { drill } = res.body;
    const cancelled = await call('POST', `/executions/${drill.executionId}/cancel`, admin);
    expect(cancelled.status).toBeLessThan(300);
    const ended = await drills.get(drill.id);
    expect(ended).toMatchObject({ result: 'FAILED', error: expect.stringMatching(/Cancelled|ABORTED/) });
    expect(ended.endedAt).toBeDefined();
    expect(await images.get(imageId)).toMatchObject({ verifyState: 'OK' });
  });

  it('refuses bad input, other users and missing objects, changing nothing', async () => {
    const imageId = await backup('d1d2d3d4e5f60703');
    const state = async () => ({
      executions: (await call('GET', '/executions', admin)).body.items.length as number,
      drills: (await drills.list()).length,
    });
    const before = await state();
    for (const body of [{ restore: 'yes' }, { latestOnly: true }, { restore: true, name: 'x' }]) {
      const bad = await call('POST', `/images/${imageId}/verify`, { ...admin, body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.error).toBe('ValidationError');
    }
    const missing = await call('POST', '/images/9999/verify', { ...admin, body: { restore: true } });
    expect(missing.status).toBe(404);
    await seedUser('erin', 'erin-token-drill', 'user');
    const erin = { token: 'erin-token-drill' };
    const other = await call('POST', `/images/${imageId}/verify`, { ...erin, body: { restore: true } });
    expect(other.status).toBe(403);
    await images.update(imageId, { state: 'ERROR' });
    const error = await call('POST', `/images/${imageId}/verify`, { ...admin, body: { restore: true } });
    expect(error.status).toBe(409);
    expect(error.body.message).toContain('only READY images can be verified');
    expect(await state()).toEqual(before);

    // Reports: another user sees none of admin's images' drills, and is refused one by id.
    const [someDrill] = await drills.list();
    expect((await call('GET', '/drills', erin)).body.items).toEqual([]);
    const refused = await call('GET', `/drills/${someDrill?.id}`, erin);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('Forbidden');
    expect((await call('GET', '/drills/9999', admin)).status).toBe(404);
    expect((await call('GET', '/drills/abc', admin)).status).toBe(400);
    expect((await call('GET', '/drills?imageId=x', admin)).status).toBe(400);
    // A drill of an image since deleted: admins only.
    await images.delete(someDrill?.imageId as number);
    expect((await call('GET', `/drills/${someDrill?.id}`, admin)).status).toBe(200);
    expect((await call('GET', `/drills/${someDrill?.id}`, erin)).status).toBe(403);
  });
});
