/**
 * `image verify` on DynamoDB Local: POST /images/{id}/verify queues one verify execution per
 * stored backup (a chain: per point), Admit hands each its recorded sha256, and the outcome lands
 * on the image (verifyState, verifiedAt, verifyError naming the file), a FAILED point winning
 * over an OK of the same request.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Task } from '#core/contracts/tasks.ts';
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
import { emfLines } from '../helpers/emf.ts';

const admin = { token: 'admin-token-image-verify' };
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

useControlPlane({
  name: 'imgverify',
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
      template: '<domain/>',
    },
  ],
});

/** One backup of VM 1 through Admit and Commit; `verified`: as a runner that verifies answers. */
async function backup(backupId: string, verified: boolean): Promise<number> {
  const res = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } });
  expect(res.status).toBe(202);
  await requests.update(res.body.id, {}, { remove: ['queue'] });
  await executions.update(res.body.id, { hostId: 1 });
  const input = { executionId: res.body.id as string, vmId: 1, datastoreId: 1, reset: false };
  const admitted = await admitBackup(input);
  const disk = { id: 0, size: 100, virtualSize: 1000, format: 'raw', file: 'disk.0.raw' };
  const host = {
    backupId,
    disks: [verified ? { ...disk, sha256: sha(backupId) } : disk],
    ...(verified && { verifiedAt: '2026-12-06T16:00:00.000Z' }),
    increment: null,
    template: '<domain/>',
    durationMs: 1,
  };
  await commitBackup({ ...input, admit: admitted, host });
  return admitted.imageId;
}

/** The Maintenance machine's input of a queued execution. */
async function machineInput(executionId: string) {
  return (await requests.get(executionId)).input as Record<string, unknown> & { executionId: string };
}

describe('image verify', () => {
  it('a verified backup is READY with verifyState OK; verify queues a task with its recorded sha256', async () => {
    const imageId = await backup('b1b2c3d4e5f60701', true);
    expect(await images.get(imageId)).toMatchObject({
      state: 'READY',
      verifyState: 'OK',
      verifiedAt: '2026-12-06T16:00:00.000Z',
    });
    const res = await call('POST', `/images/${imageId}/verify`, admin);
    expect(res.status).toBe(202);
    expect(res.body.imageId).toBe(imageId);
    expect(res.body.executions).toHaveLength(1);
    const [execution] = res.body.executions;
    expect(execution).toMatchObject({ kind: 'verify', state: 'QUEUED', imageId });
    const admitted = await admitMaintenance(await machineInput(execution.id));
    const task = Task.parse({ ...admitted.task, taskId: `${execution.id}/RunOnHost`, token: 't' });
    expect(task).toMatchObject({
      kind: 'verify',
      vmId: 1,
      backupId: 'b1b2c3d4e5f60701',
      sums: { 'disk.0.raw': sha('b1b2c3d4e5f60701') },
    });
    await commitMaintenance({
      ...(await machineInput(execution.id)),
      admit: admitted,
      host: { verified: true },
    });
    const image = await images.get(imageId);
    expect(image.verifyState).toBe('OK');
    expect(Date.parse(image.verifiedAt ?? '')).toBeGreaterThan(Date.parse('2026-12-06T16:00:00.000Z'));
  });

  it('a failed verify leaves the image FAILED with the message naming the file; an OK of a request queued before the failure does not undo it', async () => {
    const imageId = await backup('b1b2c3d4e5f60702', true);
    const first = await call('POST', `/images/${imageId}/verify`, admin);
    const second = await call('POST', `/images/${imageId}/verify`, admin);
    const failedId = second.body.executions[0].id as string;
    const failure = {
      ...(await machineInput(failedId)),
      error: {
        Error: 'BackupVerifyFailed',
        Cause: 'datastore 1: disk.0.raw of backup b1b2c3d4e5f60702 (VM 1) reads back with sha256 00, not ab',
      },
    };
    // Counted once (the VerifyFailures alarm's metric), not again when the step is retried.
    expect(await emfLines(() => markFailed(failure))).toEqual([
      expect.objectContaining({ Datastore: '1', VerifyFailures: 1 }),
    ]);
    expect(await emfLines(() => markFailed(failure))).toEqual([]);
    expect(await images.get(imageId)).toMatchObject({
      state: 'READY',
      verifyState: 'FAILED',
      verifyError: expect.stringContaining('BackupVerifyFailed: datastore 1: disk.0.raw of backup'),
    });
    // The earlier request's OK, answered after the failure, leaves it FAILED.
    const okId = first.body.executions[0].id as string;
    const admitted = await admitMaintenance(await machineInput(okId));
    await commitMaintenance({ ...(await machineInput(okId)), admit: admitted, host: { verified: true } });
    expect((await images.get(imageId)).verifyState).toBe('FAILED');
    // A later request that passes makes it OK again, the message gone.
    const again = await call('POST', `/images/${imageId}/verify`, admin);
    const againId = again.body.executions[0].id as string;
    const admittedAgain = await admitMaintenance(await machineInput(againId));
    await commitMaintenance({
      ...(await machineInput(againId)),
      admit: admittedAgain,
      host: { verified: true },
    });
    const image = await images.get(imageId);
    expect(image.verifyState).toBe('OK');
    expect(image).not.toHaveProperty('verifyError');
  });

  it('an image stored before verification existed: never verified, and its task carries no sums', async () => {
    const imageId = await backup('b1b2c3d4e5f60703', false);
    const image = await images.get(imageId);
    expect(image).not.toHaveProperty('verifyState');
    expect(image).not.toHaveProperty('verifiedAt');
    const res = await call('POST', `/images/${imageId}/verify`, admin);
    const admitted = await admitMaintenance(await machineInput(res.body.executions[0].id));
    expect(admitted.task).toMatchObject({ kind: 'verify', sums: null });
  });

  it('refuses bad input and images that cannot be read, changing nothing', async () => {
    const imageId = await backup('b1b2c3d4e5f60704', true);
    const queued = async () => (await call('GET', '/executions', admin)).body.items.length as number;
    const before = await queued();
    const bad = await call('POST', `/images/${imageId}/verify`, { ...admin, body: { priority: 'high' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('ValidationError');
    await images.update(imageId, { state: 'ERROR' });
    const error = await call('POST', `/images/${imageId}/verify`, admin);
    expect(error.status).toBe(409);
    expect(error.body.message).toContain('only READY images can be verified');
    await seedUser('dave', 'dave-token-image-verify', 'user');
    const other = await call('POST', `/images/${imageId}/verify`, { token: 'dave-token-image-verify' });
    expect(other.status).toBe(403);
    expect(await queued()).toBe(before);
  });
});
