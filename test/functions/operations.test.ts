/**
 * The dispatcher and the state-machine steps on DynamoDB Local, driven the way the Backup and
 * Restore state machines drive them (`$` in, result under its ResultPath).
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TASK_FIELDS } from '#core/contracts/tasks.ts';
import { dispatch } from '#functions/dispatcher/handler.ts';
import { hostSlotName, readCounter } from '#functions/repo/counters.ts';
import { executions } from '#functions/repo/executions.ts';
import { images } from '#functions/repo/images.ts';
import { pendingRequests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as admitRestore } from '#functions/tasks/admit-restore.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as commitRestore } from '#functions/tasks/commit-restore.ts';
import { handler as markFailed } from '#functions/tasks/mark-failed.ts';
import { handler as release } from '#functions/tasks/release.ts';
import { generateHostKeyPair, unsealSecrets } from '#platform/sealed-secrets.ts';
import { call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';
import { TEST_HOST_KEY } from '../helpers/host-key.ts';

const admin = { token: 'admin-token-operations' };

const disk = (id: number, extra = {}) => ({
  id,
  target: `vd${'abcd'[id]}`,
  source: `/images/d${id}.qcow2`,
  format: 'qcow2',
  size: 1000 * (id + 1),
  ...extra,
});
const domain = (name: string) => ({
  domain: name,
  state: 'RUNNING',
  disks: [disk(0), disk(1, { volatile: true })],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
});

async function queueBackup(vmId: number): Promise<string> {
  const res = await call('POST', `/vms/${vmId}/backup`, { ...admin, body: { datastoreId: 1 } });
  expect(res.status).toBe(202);
  return res.body.id;
}

const plane = useControlPlane({
  name: 'ops',
  env: {
    BACKUP_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Backup',
    RESTORE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Restore',
    MAX_BACKUPS: '3',
    MAX_BACKUPS_HOST: '2',
  },
  sfn: true,
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw-never-in-tasks',
  inventory: ['a', 'b', 'c', 'd'].map((n) => domain(`vm-${n}`)),
});
beforeEach(() => {
  plane.sfn.failWith = null;
});

describe('dispatcher', () => {
  it('starts queued backups up to MAX_BACKUPS_HOST and leaves the rest queued', async () => {
    const ids = [await queueBackup(1), await queueBackup(2), await queueBackup(3)];
    const report = await dispatch();
    expect(report.started).toEqual(ids.slice(0, 2));
    expect(report.waiting).toEqual([ids[2]]);
    expect(plane.sfn.calls.map((c) => c.name)).toEqual(ids.slice(0, 2));
    expect(plane.sfn.calls[0]?.input).toEqual({
      executionId: ids[0],
      hostId: 1,
      vmId: 1,
      datastoreId: 1,
      reset: false,
    });
    const first = await executions.get(ids[0] as string);
    expect(first).toMatchObject({
      state: 'RUNNING',
      executionArn: `arn:aws:states:us-east-1:000000000000:execution:Backup:${ids[0]}`,
    });
    expect((await pendingRequests()).map((r) => r.id)).toEqual([ids[2]]);
    expect(await readCounter(hostSlotName(1))).toBe(2);
  });

  it('gives the slot back and keeps the request queued when StartExecution fails', async () => {
    // Free one slot as Release would, then make Step Functions fail.
    await release({ executionId: '1' });
    expect(await readCounter(hostSlotName(1))).toBe(1);
    plane.sfn.failWith = 'ServiceUnavailable';
    const report = await dispatch();
    expect(report.started).toEqual([]);
    expect(await readCounter(hostSlotName(1))).toBe(1);
    expect((await pendingRequests()).map((r) => r.id)).toEqual(['3']);
    expect((await executions.get('3')).state).toBe('QUEUED');
  });

  it('treats ExecutionAlreadyExists as started, without taking a second slot', async () => {
    plane.sfn.failWith = 'ExecutionAlreadyExists';
    const report = await dispatch();
    expect(report.started).toEqual(['3']);
    expect((await executions.get('3')).state).toBe('RUNNING');
    expect(await readCounter(hostSlotName(1))).toBe(1);
  });

  it('fails a request whose VM vanished, with the reason', async () => {
    const id = await queueBackup(4);
    await vms.delete(4);
    const report = await dispatch();
    expect(report.failed).toEqual([id]);
    expect(await executions.get(id)).toMatchObject({
      state: 'FAILED',
      error: { name: 'NotFound', message: 'VM 4 does not exist' },
    });
    expect(await pendingRequests()).toEqual([]);
  });
});

describe('backup steps', () => {
  const input = { executionId: '2', vmId: 2, datastoreId: 1, reset: false };
  let admitted: Awaited<ReturnType<typeof admitBackup>>;

  it('Admit locks the VM, creates a LOCKED image and builds a complete task with its secrets sealed to the host', async () => {
    admitted = await admitBackup(input);
    for (const field of TASK_FIELDS.backup) expect(admitted.task).toHaveProperty(field);
    for (const field of TASK_FIELDS.cleanup) expect(admitted.cleanup).toHaveProperty(field);
    expect(admitted.task.disks.map((d) => d.id)).toEqual([0]); // the volatile disk is left out
    expect(admitted.task).toMatchObject({ v: 1, kind: 'backup', increment: null, heartbeatSeconds: 120 });
    // Both tasks name the host whose queue they go to: its runner alone runs them.
    expect([admitted.task.hostId, admitted.cleanup.hostId]).toEqual([admitted.hostId, admitted.hostId]);
    expect(admitted.task.datastore).toEqual({
      id: 1,
      driver: 'restic',
      attributes: expect.any(Object),
      sealedSecrets: expect.stringMatching(/^v1\./),
    });
    // What the execution history keeps: no value, no reference to the secret store.
    const history = JSON.stringify(admitted);
    expect(history).not.toContain('pw-never-in-tasks');
    expect(history).not.toContain('secretRef');
    expect(history).not.toContain('ds/1');
    // Only the host's key opens it, for this datastore only.
    for (const sealed of [admitted.task.datastore.sealedSecrets, admitted.cleanup.datastore?.sealedSecrets]) {
      expect(unsealSecrets(sealed as string, TEST_HOST_KEY.privateKey, 'ds/1')).toEqual({
        RESTIC_PASSWORD: 'pw-never-in-tasks',
      });
      expect(() => unsealSecrets(sealed as string, generateHostKeyPair().privateKey, 'ds/1')).toThrow(
        /cannot be opened/,
      );
    }
    expect(admitted.queueUrl).toMatch(/lifeboat-host-1$/);
    expect(await images.get(admitted.imageId)).toMatchObject({ state: 'LOCKED', vmId: 2, name: '2-2' });
    const vm = await vms.get(2);
    expect(vm.lock).toBe('2');
    expect(vm.backups.BACKUP_CONFIG.LAST_DATASTORE_ID).toBe('1');
  });

  it('Admit is idempotent and refuses a second backup of a locked VM', async () => {
    const again = await admitBackup(input);
    expect(again.imageId).toBe(admitted.imageId);
    await expect(admitBackup({ ...input, executionId: '3' })).rejects.toMatchObject({
      name: 'Conflict',
      message: 'VM 2 has a backup in progress (execution 2)',
    });
  });

  it('Commit makes the image READY, appends BACKUP_IDS, clears LAST_* and unlocks', async () => {
    const host = {
      backupId: 'snap-1',
      disks: [{ id: 0, size: 400, virtualSize: 1000, format: 'raw', file: 'disk.0' }],
      increment: null,
      template: '<domain/>',
      durationMs: 10,
    };
    const committed = await commitBackup({ ...input, admit: admitted, host });
    await commitBackup({ ...input, admit: admitted, host }); // a retry changes nothing
    expect(await images.get(admitted.imageId)).toMatchObject({
      state: 'READY',
      source: 'snap-1',
      size: 400,
      template: '<domain/>',
    });
    const vm = await vms.get(2);
    expect(vm.lock).toBeUndefined();
    expect(vm.backups.BACKUP_IDS).toEqual([admitted.imageId]);
    expect(vm.backups.BACKUP_CONFIG.LAST_DATASTORE_ID).toBeUndefined();
    // Commit tells Release it is done (its output, `$.commit`); Release records phase `done`.
    expect((await executions.get('2')).phase).toBe('committing');
    expect(committed).toMatchObject({ imageId: admitted.imageId, size: 400 });
  });

  it('Commit refuses a runner result that does not match the contract', async () => {
    await expect(commitBackup({ ...input, host: { backupId: '' } })).rejects.toMatchObject({
      name: 'ValidationError',
    });
  });

  it('Release ends the execution and gives the slot back exactly once', async () => {
    const before = await readCounter('active');
    const hostBefore = await readCounter(hostSlotName(admitted.hostId));
    // The success path's whole state: the one-transaction ending, then a retry (the general way).
    const state = { ...input, admit: admitted, commit: { imageId: admitted.imageId, size: 400 } };
    await release(state);
    await release(state);
    await release({ executionId: '2' });
    expect(await readCounter('active')).toBe(before - 1);
    expect(await readCounter(hostSlotName(admitted.hostId))).toBe(hostBefore - 1);
    expect(await executions.get('2')).toMatchObject({
      state: 'SUCCEEDED',
      phase: 'done',
      bytesDone: 400,
      bytesTotal: 400,
      released: true,
      endedAt: expect.any(String),
    });
  });

  it('MarkFailed records the Lambda error, sets the image to ERROR and unlocks only its own lock', async () => {
    const failing = { executionId: '3', vmId: 3, datastoreId: 1, reset: false };
    const admit = await admitBackup(failing);
    const cause = JSON.stringify({ errorType: 'ValidationError', errorMessage: 'backupId: required' });
    await markFailed({ ...failing, admit, error: { Error: 'ValidationError', Cause: cause } });
    expect(await executions.get('3')).toMatchObject({
      state: 'FAILED',
      phase: 'failed',
      error: { name: 'ValidationError', message: 'backupId: required' },
    });
    expect((await images.get(admit.imageId)).state).toBe('ERROR');
    expect((await vms.get(3)).lock).toBeUndefined();

    await vms.update(3, { lock: '99' });
    await markFailed({ ...failing, error: { Error: 'States.HeartbeatTimeout', Cause: '' } });
    expect((await vms.get(3)).lock).toBe('99');
    expect((await executions.get('3')).state).toBe('TIMED_OUT');
    await vms.update(3, {}, { remove: ['lock'] });
  });
});

describe('restore steps', () => {
  it('Admit builds the restore task into the default folder; Commit records the result', async () => {
    const res = await call('POST', '/images/1/restore', { ...admin, body: { name: 'vm-b-copy' } });
    expect(res.status).toBe(202);
    const id = res.body.id;
    const admitted = await admitRestore({
      executionId: id,
      imageId: 1,
      options: { name: 'vm-b-copy', noIp: false, noNic: false, hostId: 1 },
    });
    for (const field of TASK_FIELDS.restore) expect(admitted.task).toHaveProperty(field);
    expect(admitted.task).toMatchObject({
      kind: 'restore',
      vmId: 2,
      backupId: 'snap-1',
      // Relative, under the host's first restore root; no `confine` recorded: confined.
      target: 'vm-b-copy',
      confine: true,
      disks: [{ id: 0, file: 'disk.0' }],
      // The cleaned template: the new VM's name.
      template: '<domain><name>vm-b-copy</name></domain>',
    });
    await commitRestore({
      executionId: id,
      host: {
        disks: [{ id: 0, path: '/restores/vm-b-copy/disk.0', size: 1000 }],
        templatePath: null,
        durationMs: 5,
      },
    });
    expect(await executions.get(id)).toMatchObject({ phase: 'done', bytesDone: 1000 });
  });
});

describe('secrets at Admit', () => {
  let vmId: number;
  beforeAll(async () => {
    // A host registered without a key: its runner never enrolled.
    expect((await call('POST', '/hosts', { ...admin, body: { name: 'kvm-2' } })).status).toBe(201);
    const inventory = await call('PUT', '/hosts/2/inventory', { ...admin, body: { vms: [domain('vm-z')] } });
    vmId = inventory.body.items[0].id;
  });

  it('refuses a datastore with secrets for a host with no registered key, locking nothing', async () => {
    const id = await queueBackup(vmId);
    const imagesBefore = (await images.list()).length;
    await expect(admitBackup({ executionId: id, vmId, datastoreId: 1, reset: false })).rejects.toMatchObject({
      name: 'Conflict',
      message: 'Host 2 has no registered key: enroll its runner (lifeboat host enroll kvm-2)',
    });
    expect((await vms.get(vmId)).lock).toBeUndefined();
    expect(await images.list()).toHaveLength(imagesBefore);
    // As the state machine goes on: MarkFailed ends it, so the VM can be queued again.
    await markFailed({ executionId: id, error: { Error: 'Conflict', Cause: 'no key' } });
  });

  it('needs no key for a datastore without secrets', async () => {
    const ds = await call('POST', '/datastores', {
      ...admin,
      body: { name: 'plain', driver: 'rsync', attributes: { RSYNC_HOST: 'backup-1' } },
    });
    expect(ds.status).toBe(201);
    const res = await call('POST', `/vms/${vmId}/backup`, { ...admin, body: { datastoreId: ds.body.id } });
    const admitted = await admitBackup({
      executionId: res.body.id,
      vmId,
      datastoreId: ds.body.id,
      reset: false,
    });
    expect(admitted.task.datastore).toMatchObject({ id: ds.body.id, driver: 'rsync', sealedSecrets: null });
  });
});
