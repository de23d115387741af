/**
 * An increment chain through the Backup and Restore steps on DynamoDB Local: the chain's FULL,
 * an increment, restore points, a chain the runner could not follow (a new chain), a failed
 * increment leaving the chain READY.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { executions } from '#functions/repo/executions.ts';
import { images } from '#functions/repo/images.ts';
import { dequeue } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as admitMaintenance } from '#functions/tasks/admit-maintenance.ts';
import { handler as admitRestore } from '#functions/tasks/admit-restore.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as commitMaintenance } from '#functions/tasks/commit-maintenance.ts';
import { handler as markFailed } from '#functions/tasks/mark-failed.ts';
import { call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-chain' };
useControlPlane({
  name: 'chain',
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
beforeAll(async () => {
  const config = await call('PUT', '/vms/1/backup-config', {
    ...admin,
    body: { pairs: { MODE: 'INCREMENT' } },
  });
  expect(config.status).toBe(200);
});

/** Queues a backup of VM 1 through the API, takes it off the queue as the dispatcher would, and admits it. */
async function admit() {
  const res = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } });
  expect(res.status).toBe(202);
  await dequeue(res.body.id);
  const input = { executionId: res.body.id as string, vmId: 1, datastoreId: 1, reset: false };
  return { input, admitted: await admitBackup(input) };
}

/** A sha256 per backup id, as the runner reports it after verifying the stored file. */
const sha256Of = (backupId: string) => createHash('sha256').update(backupId).digest('hex');
const VERIFIED_AT = '2026-12-06T16:00:00.000Z';

const result = (
  backupId: string,
  file: string,
  increment: object | null,
  chainReset: string | null = null,
) => ({
  backupId,
  disks: [
    {
      id: 0,
      size: 100,
      virtualSize: 1000,
      format: file.endsWith('.raw') ? 'raw' : 'qcow2',
      file,
      sha256: sha256Of(backupId),
    },
  ],
  verifiedAt: VERIFIED_AT,
  increment,
  chainReset,
  template: '<domain/>',
  durationMs: 5,
});

describe('an increment chain', () => {
  let chainId: number;
  let firstCheckpoint: string;

  it('starts with a FULL that creates the first checkpoint, recorded as point 0', async () => {
    const { input, admitted } = await admit();
    firstCheckpoint = `lifeboat-${input.executionId}`;
    expect(admitted.task.increment).toEqual({
      chain: admitted.imageId,
      parent: null,
      id: 0,
      checkpoint: firstCheckpoint,
      parentCheckpoint: null,
    });
    chainId = admitted.imageId;
    const host = result('snap-0', 'disk.0.raw', { id: 0, parent: null, checkpoint: firstCheckpoint });
    await commitBackup({ ...input, admit: admitted, host });
    const image = await images.get(chainId);
    expect(image).toMatchObject({ state: 'READY', mode: 'INCREMENT', source: 'snap-0' });
    expect(image.increments).toMatchObject([{ id: 0, type: 'FULL', checkpoint: firstCheckpoint }]);
    // What the runner verified: each disk's sha256 and when, on the image and on its point 0.
    expect(image.disks).toEqual([
      { id: 0, size: 100, virtualSize: 1000, format: 'raw', file: 'disk.0.raw', sha256: sha256Of('snap-0') },
    ]);
    expect(image.verifiedAt).toBe(VERIFIED_AT);
    expect(image.increments[0]).toMatchObject({
      verifiedAt: VERIFIED_AT,
      disks: [{ id: 0, file: 'disk.0.raw', size: 100, sha256: sha256Of('snap-0') }],
    });
    // `image show` (GET /images/{id}) shows them.
    const shown = await call('GET', `/images/${chainId}`, admin);
    expect(shown.body).toMatchObject({
      verifiedAt: VERIFIED_AT,
      disks: [{ id: 0, sha256: sha256Of('snap-0') }],
    });
    const vm = await vms.get(1);
    expect(vm.backups.BACKUP_CONFIG).toMatchObject({
      INCREMENTAL_BACKUP_ID: String(chainId),
      LAST_INCREMENT_ID: '0',
    });
  });

  it('extends it with an increment that follows the FULL checkpoint; a retried commit changes nothing', async () => {
    const { input, admitted } = await admit();
    expect(admitted.imageId).toBe(chainId);
    expect(admitted.task.increment).toMatchObject({ parent: 0, id: 1, parentCheckpoint: firstCheckpoint });
    expect((await images.get(chainId)).state).toBe('LOCKED');
    const checkpoint = `lifeboat-${input.executionId}`;
    const host = result('snap-1', 'disk.0.inc1.qcow2', { id: 1, parent: 0, checkpoint });
    await commitBackup({ ...input, admit: admitted, host });
    await commitBackup({ ...input, admit: admitted, host });
    const image = await images.get(chainId);
    expect(image.state).toBe('READY');
    expect(image.size).toBe(200);
    expect(image.increments.map((i) => [i.id, i.type, i.source])).toEqual([
      [0, 'FULL', 'snap-0'],
      [1, 'INCREMENT', 'snap-1'],
    ]);
    expect(image.increments[1]).toMatchObject({
      verifiedAt: VERIFIED_AT,
      disks: [{ id: 0, file: 'disk.0.inc1.qcow2', size: 100, sha256: sha256Of('snap-1') }],
    });
    expect((await vms.get(1)).backups.BACKUP_CONFIG.LAST_INCREMENT_ID).toBe('1');
  });

  it('restores any point: the FULL alone, or the FULL and the increments up to it', async () => {
    const restore = async (incrementId?: number) => {
      const res = await call('POST', `/images/${chainId}/restore`, { ...admin, body: {} });
      expect(res.status).toBe(202);
      await dequeue(res.body.id);
      const options = {
        noIp: false,
        noNic: false,
        hostId: 1,
        ...(incrementId === undefined ? {} : { incrementId }),
      };
      return admitRestore({ executionId: res.body.id, imageId: chainId, options });
    };
    expect((await restore(0)).task).toMatchObject({
      backupId: 'snap-0',
      disks: [{ id: 0, file: 'disk.0.raw' }],
      increment: 0,
      chain: [],
    });
    expect((await restore()).task).toMatchObject({
      backupId: 'snap-0',
      increment: 1,
      chain: [{ backupId: 'snap-1', disks: [{ id: 0, file: 'disk.0.inc1.qcow2' }] }],
    });
    await expect(restore(7)).rejects.toMatchObject({
      name: 'ValidationError',
      message: `incrementId: 7 is not a restore point of image ${chainId} (points: 0, 1)`,
    });
  });

  it('a failed increment leaves the chain READY and as it was', async () => {
    const { input } = await admit();
    await markFailed({
      ...input,
      error: { Error: 'DatastoreUnavailable', Cause: 'sftp: connection refused' },
    });
    const image = await images.get(chainId);
    expect(image.state).toBe('READY');
    expect(image.increments).toHaveLength(2);
    expect((await vms.get(1)).lock).toBeUndefined();
  });

  it('when the runner could not follow the chain, its FULL starts a new image and the reason is kept', async () => {
    const { input, admitted } = await admit();
    expect(admitted.imageId).toBe(chainId);
    const checkpoint = `lifeboat-${input.executionId}`;
    const reason = "Disk /images/a.qcow2 has no bitmap 'lifeboat-3' (disk replaced?)";
    const host = result('snap-new', 'disk.0.raw', { id: 0, parent: null, checkpoint }, reason);
    await commitBackup({ ...input, admit: admitted, host });
    await commitBackup({ ...input, admit: admitted, host });
    const old = await images.get(chainId);
    expect(old.state).toBe('READY');
    expect(old.increments).toHaveLength(2);
    const newId = (await executions.get(input.executionId)).imageId as number;
    expect(newId).not.toBe(chainId);
    const fresh = await images.get(newId);
    expect(fresh).toMatchObject({ state: 'READY', source: 'snap-new', mode: 'INCREMENT' });
    expect(fresh.increments).toMatchObject([{ id: 0, type: 'FULL', checkpoint, resetReason: reason }]);
    const vm = await vms.get(1);
    expect(vm.backups.BACKUP_IDS).toEqual([chainId, newId]);
    expect(vm.backups.BACKUP_CONFIG).toMatchObject({
      INCREMENTAL_BACKUP_ID: String(newId),
      LAST_INCREMENT_ID: '0',
    });
    expect(vm.lock).toBeUndefined();
  });
});

describe('KEEP_LAST on an increment chain', () => {
  let chainId: number;
  let flattenId: string;

  /** One backup of VM 1 committed as the next point of its chain. */
  async function increment(n: number) {
    const { input, admitted } = await admit();
    const point = admitted.task.increment as { id: number; parent: number | null; checkpoint: string };
    const file = point.parent === null ? 'disk.0.raw' : `disk.0.inc${point.id}.qcow2`;
    const host = result(`k-snap-${n}`, file, {
      id: point.id,
      parent: point.parent,
      checkpoint: point.checkpoint,
    });
    return commitBackup({ ...input, admit: admitted, host });
  }

  it('a chain with more points than KEEP_LAST gets ACTIVE_FLATTEN and a flatten; backups are refused meanwhile', async () => {
    expect(
      (
        await call('PUT', '/vms/1/backup-config', {
          ...admin,
          body: { pairs: { KEEP_LAST: '2' }, append: true },
        })
      ).status,
    ).toBe(200);
    const reset = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1, reset: true } });
    await dequeue(reset.body.id);
    const first = await admitBackup({ executionId: reset.body.id, vmId: 1, datastoreId: 1, reset: true });
    chainId = first.imageId;
    const full = result('k-snap-0', 'disk.0.raw', first.task.increment);
    await commitBackup({ executionId: reset.body.id, vmId: 1, datastoreId: 1, admit: first, host: full });
    expect((await increment(1)).flatten).toBeNull();
    const third = await increment(2);
    expect(third.flatten).toEqual(expect.any(String));
    flattenId = third.flatten as string;
    expect((await vms.get(1)).backups.BACKUP_CONFIG.ACTIVE_FLATTEN).toBe('YES');
    expect(await images.get(chainId)).toMatchObject({ state: 'LOCKED', executionId: flattenId });
    expect(await executions.get(flattenId)).toMatchObject({
      kind: 'flatten',
      state: 'QUEUED',
      imageId: chainId,
    });

    const before = (await call('GET', '/executions', admin)).body.items.length;
    const refused = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } });
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({
      error: 'Conflict',
      message:
        'VM 1: its increment chain is being flattened for KEEP_LAST (ACTIVE_FLATTEN=YES); back it up when that ends',
    });
    expect((await call('GET', '/executions', admin)).body.items.length).toBe(before);
    const deleted = await call('DELETE', `/images/${chainId}`, admin);
    expect(deleted.status).toBe(409);
    expect(deleted.body.message).toBe(
      `Image ${chainId} is being flattened for KEEP_LAST (ACTIVE_FLATTEN, execution ${flattenId}): delete it when that ends`,
    );
  });

  it('the flatten merges points 0 and 1 into a new base 1; the merged backups are removed, the image kept', async () => {
    await dequeue(flattenId);
    const input = {
      executionId: flattenId,
      kind: 'flatten' as const,
      hostId: 1,
      datastoreId: 1,
      imageId: chainId,
      backupId: null,
      file: null,
      toPath: null,
    };
    const admitted = await admitMaintenance(input);
    expect(admitted.task).toMatchObject({
      kind: 'flatten',
      vmId: 1,
      imageId: chainId,
      points: [
        { backupId: 'k-snap-0', disks: [{ id: 0, file: 'disk.0.raw' }] },
        { backupId: 'k-snap-1', disks: [{ id: 0, file: 'disk.0.inc1.qcow2' }] },
      ],
    });
    const host = {
      backupId: 'k-flat-1',
      disks: [{ id: 0, file: 'disk.0.qcow2', size: 150, virtualSize: 1000 }],
    };
    const committed = (await commitMaintenance({ ...input, admit: admitted, host })) as {
      removing: string[];
    };
    await commitMaintenance({ ...input, admit: admitted, host });
    const image = await images.get(chainId);
    expect(image.state).toBe('READY');
    expect(image.increments.map((i) => [i.id, i.type, i.source])).toEqual([
      [1, 'FULL', 'k-flat-1'],
      [2, 'INCREMENT', 'k-snap-2'],
    ]);
    expect((await vms.get(1)).backups.BACKUP_CONFIG.ACTIVE_FLATTEN).toBeUndefined();
    expect(committed.removing).toHaveLength(2);

    for (const id of committed.removing) {
      const execution = await executions.get(id);
      await dequeue(id);
      const del = {
        executionId: id,
        kind: 'delete' as const,
        hostId: 1,
        datastoreId: 1,
        imageId: chainId,
        backupId: execution.params.backupId as string,
        file: null,
        toPath: null,
      };
      const admittedDelete = await admitMaintenance(del);
      expect(admittedDelete.task).toMatchObject({ kind: 'rm', backupId: del.backupId });
      expect(await commitMaintenance({ ...del, admit: admittedDelete, host: { removed: true } })).toEqual({
        imageRemoved: false,
      });
    }
    expect((await images.get(chainId)).increments).toHaveLength(2);
  });
});
