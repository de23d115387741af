/**
 * Maintenance on DynamoDB Local: image delete, KEEP_LAST retention, downloads, the host rule,
 * the Maintenance steps driven as the state machine drives them, and the dispatcher starting
 * maintenance executions without a MAX_BACKUPS slot.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DownloadTask, MAINTENANCE_TASK_FIELDS, Task } from '#core/contracts/tasks.ts';
import type { Image } from '#core/model.ts';
import { dispatch } from '#functions/dispatcher/handler.ts';
import { maintenanceHost } from '#functions/operations/maintenance.ts';
import { hostSlotName, readCounter } from '#functions/repo/counters.ts';
import { datastores } from '#functions/repo/datastores.ts';
import { executions } from '#functions/repo/executions.ts';
import { hosts } from '#functions/repo/hosts.ts';
import { images, listImages } from '#functions/repo/images.ts';
import { pendingRequests, requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as admitMaintenance } from '#functions/tasks/admit-maintenance.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as commitMaintenance } from '#functions/tasks/commit-maintenance.ts';
import { handler as markFailed } from '#functions/tasks/mark-failed.ts';
import { handler as release } from '#functions/tasks/release.ts';
import type { TaskContext } from '#runner/tasks/context.ts';
import { runDownload } from '#runner/tasks/datastore-ops.ts';
import { fakeDrivers } from '../../runner/testing/fakes.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-maintenance' };
const dave = { token: 'dave-token-maintenance' };
const MAINTENANCE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:Maintenance';

const domain = (name: string) => ({
  domain: name,
  state: 'RUNNING',
  disks: [{ id: 0, target: 'vda', source: `/images/${name}.qcow2`, format: 'qcow2', size: 1000 }],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
});

/** One backup of VM `vmId` through Admit and Commit, as the Backup machine runs them. */
async function backup(vmId: number, backupId: string): Promise<number> {
  const res = await call('POST', `/vms/${vmId}/backup`, { ...admin, body: { datastoreId: 1 } });
  expect(res.status).toBe(202);
  const input = { executionId: res.body.id, vmId, datastoreId: 1, reset: false };
  await requests.update(res.body.id, {}, { remove: ['queue'] });
  await executions.update(res.body.id, { hostId: 1 });
  const admitted = await admitBackup(input);
  const host = {
    backupId,
    disks: [{ id: 0, size: 100, virtualSize: 1000, format: 'raw', file: 'disk.0.raw' }],
    increment: null,
    template: '<domain/>',
    durationMs: 1,
  };
  await commitBackup({ ...input, admit: admitted, host });
  return admitted.imageId;
}

/** The state input the dispatcher would start the Maintenance machine with. */
async function machineInput(executionId: string) {
  return (await requests.get(executionId)).input as Record<string, unknown> & { executionId: string };
}

const plane = useControlPlane({
  name: 'maint',
  env: {
    BACKUP_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Backup',
    RESTORE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Restore',
    MAINTENANCE_STATE_MACHINE_ARN: MAINTENANCE_ARN,
    MAX_BACKUPS: '1',
    MAX_BACKUPS_HOST: '1',
    // The queue's exact contents are checked here: no datastore monitor after each backup
    // (test/functions/capacity.test.ts has those).
    MONITOR_INTERVAL_MINUTES: '0',
  },
  sfn: true,
  admin,
  hosts: ['kvm-1', 'kvm-2'],
  resticPassword: 'pw-never-in-tasks',
  inventory: [domain('vm-a'), domain('vm-b')],
});

describe('which host runs a maintenance task', () => {
  it('takes BRIDGE_LIST first, else the VM’s MONITORED host, else any MONITORED host, else says why', async () => {
    const ds = await datastores.get(1);
    expect((await maintenanceHost(ds, 1)).id).toBe(1);
    // Host 2 has not reported inventory (INIT): only MONITORED hosts run tasks.
    await expect(maintenanceHost({ ...ds, attributes: { BRIDGE_LIST: 'kvm-2' } }, 1)).rejects.toThrow(
      /no MONITORED host of datastore 1's BRIDGE_LIST \(kvm-2\)/,
    );
    await hosts.update(2, { state: 'MONITORED' });
    expect((await maintenanceHost({ ...ds, attributes: { BRIDGE_LIST: 'kvm-9 kvm-2' } }, 1)).id).toBe(2);
    await hosts.update(1, { state: 'OFFLINE' });
    expect((await maintenanceHost(ds, 1)).id).toBe(2);
    await hosts.update(2, { state: 'INIT' });
    await expect(maintenanceHost(ds, 1)).rejects.toMatchObject({
      name: 'Conflict',
      message: expect.stringContaining('no MONITORED host can run a task on datastore 1'),
    });
    await hosts.update(1, { state: 'MONITORED' });
  });
});

describe('image delete', () => {
  let imageId: number;
  let executionId: string;

  it('DELETE /images/{id}: DELETING, out of BACKUP_IDS, a delete execution queued (202)', async () => {
    imageId = await backup(1, 'snap-del');
    expect((await vms.get(1)).backups.BACKUP_IDS).toContain(imageId);
    const res = await call('DELETE', `/images/${imageId}`, admin);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ kind: 'delete', state: 'QUEUED', imageId, hostId: 1 });
    executionId = res.body.id;
    expect((await images.get(imageId)).state).toBe('DELETING');
    expect((await vms.get(1)).backups.BACKUP_IDS).not.toContain(imageId);
  });

  it('the dispatcher starts it on the Maintenance machine without taking a slot, even when none is free', async () => {
    // Fill the only slot with a backup execution.
    const queued = await call('POST', '/vms/2/backup', { ...admin, body: { datastoreId: 1 } });
    plane.sfn.calls.length = 0;
    const report = await dispatch();
    expect(report.started).toEqual([executionId, queued.body.id]);
    expect(plane.sfn.calls.map((c) => c.stateMachineArn)).toEqual([
      MAINTENANCE_ARN,
      'arn:aws:states:us-east-1:000000000000:stateMachine:Backup',
    ]);
    expect(await readCounter('active')).toBe(1);
    expect(await pendingRequests()).toEqual([]);
  });

  it('Admit builds an rm task the runner accepts: every machine field present, the rest null', async () => {
    const input = await machineInput(executionId);
    const admitted = await admitMaintenance(input);
    expect(Object.keys(admitted.task).sort()).toEqual([...MAINTENANCE_TASK_FIELDS].sort());
    expect(admitted.task).toMatchObject({
      kind: 'rm',
      vmId: 1,
      backupId: 'snap-del',
      file: null,
      toPath: null,
    });
    expect(JSON.stringify(admitted)).not.toContain('pw-never-in-tasks');
    const message = Task.parse({ ...admitted.task, taskId: `${executionId}/RunOnHost`, token: 't' });
    expect(message).toMatchObject({ kind: 'rm', vmId: 1, backupId: 'snap-del', datastore: { id: 1 } });
    expect(message).not.toHaveProperty('file');
  });

  it('Commit removes the image record; Release gives back no slot', async () => {
    const input = await machineInput(executionId);
    await commitMaintenance({ ...input, host: { removed: true } });
    await commitMaintenance({ ...input, host: { removed: true } }); // a retry is harmless
    expect(await images.find(imageId)).toBeUndefined();
    await release({ executionId });
    expect(await executions.get(executionId)).toMatchObject({ state: 'SUCCEEDED', phase: 'done' });
    expect(await readCounter('active')).toBe(1);
    expect(await readCounter(hostSlotName(1))).toBe(1);
  });

  it('a failed delete leaves the image ERROR, and it can be deleted again', async () => {
    const id = await backup(2, 'snap-fail');
    await vms.update(2, {}, { remove: ['lock'] });
    const res = await call('DELETE', `/images/${id}`, admin);
    expect(res.status).toBe(202);
    await markFailed({
      ...(await machineInput(res.body.id)),
      error: { Error: 'DatastoreUnreachable', Cause: 'ssh refused' },
    });
    expect((await images.get(id)).state).toBe('ERROR');
    expect((await executions.get(res.body.id)).error).toEqual({
      name: 'DatastoreUnreachable',
      message: 'ssh refused',
    });
    expect((await call('DELETE', `/images/${id}`, admin)).status).toBe(202);
  });

  it('refuses LOCKED images (409) and an image no host can reach, changing nothing', async () => {
    const locked: Image = { ...(await images.list())[0], id: 900, state: 'LOCKED' } as Image;
    await images.put(locked);
    expect((await call('DELETE', '/images/900', admin)).status).toBe(409);
    await images.put({ ...locked, state: 'READY' });
    await hosts.update(1, { state: 'OFFLINE' });
    const res = await call('DELETE', '/images/900', admin);
    expect(res.status).toBe(409);
    expect(res.body.message).toContain('no MONITORED host');
    expect((await images.get(900)).state).toBe('READY');
    await hosts.update(1, { state: 'MONITORED' });
  });
});

describe('KEEP_LAST retention', () => {
  it('KEEP_LAST=2 and three backups: the first leaves BACKUP_IDS, becomes DELETING and gets a delete execution', async () => {
    const put = await call('PUT', '/vms/1/backup-config', { ...admin, body: { pairs: { KEEP_LAST: '2' } } });
    expect(put.status).toBe(200);
    await vms.update(1, { 'backups.BACKUP_IDS': [] });
    const ids = [await backup(1, 'k-1'), await backup(1, 'k-2'), await backup(1, 'k-3')];
    expect((await vms.get(1)).backups.BACKUP_IDS).toEqual(ids.slice(1));
    expect((await images.get(ids[0] as number)).state).toBe('DELETING');
    expect((await images.get(ids[1] as number)).state).toBe('READY');
    const deletes = (await pendingRequests()).filter((r) => r.kind === 'delete' && r.imageId === ids[0]);
    expect(deletes).toHaveLength(1);
    expect(deletes[0]?.input).toMatchObject({ kind: 'delete', backupId: 'k-1', hostId: 1, datastoreId: 1 });
    expect(deletes[0]?.requestedBy).toBe('lifeboat:retention');
  });
});

describe('a deletion stranded by a crash', () => {
  it('is claimed again: by a DELETE, and by the CommitBackup retry whose KEEP_LAST dropped it', async () => {
    await vms.update(
      2,
      { 'backups.BACKUP_CONFIG.KEEP_LAST': '1', 'backups.BACKUP_IDS': [] },
      { remove: ['lock'] },
    );
    const first = await backup(2, 's-1');
    await vms.update(2, {}, { remove: ['lock'] });
    // Crash simulated: claimed (DELETING) but its deletes never queued.
    await images.update(first, { state: 'DELETING', deleteQueued: false });
    const res = await call('DELETE', `/images/${first}`, admin);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ kind: 'delete', imageId: first });
    expect((await images.get(first)).deleteQueued).toBe(true);
    // Once queued, a second DELETE is refused.
    expect((await call('DELETE', `/images/${first}`, admin)).status).toBe(409);

    // KEEP_LAST=1: the next backup drops `second`; its commit crashed after the claim, then retried.
    const second = await backup(2, 's-2');
    await vms.update(2, {}, { remove: ['lock'] });
    const res3 = await call('POST', '/vms/2/backup', { ...admin, body: { datastoreId: 1 } });
    const input = { executionId: res3.body.id, vmId: 2, datastoreId: 1, reset: false };
    await requests.update(res3.body.id, {}, { remove: ['queue'] });
    await executions.update(res3.body.id, { hostId: 1 });
    const admitted = await admitBackup(input);
    const host = {
      backupId: 's-3',
      disks: [{ id: 0, size: 100, virtualSize: 1000, format: 'raw', file: 'disk.0.raw' }],
      increment: null,
      template: '<domain/>',
      durationMs: 1,
    };
    await executions.update(res3.body.id, { 'params.retention': [second] });
    await images.update(second, { state: 'DELETING', deleteQueued: false });
    await commitBackup({ ...input, admit: admitted, host });
    const deletes = (await pendingRequests()).filter((r) => r.kind === 'delete' && r.imageId === second);
    expect(deletes).toHaveLength(1);
    expect((await images.get(second)).deleteQueued).toBe(true);
    await vms.update(2, {}, { remove: ['backups.BACKUP_CONFIG.KEEP_LAST'] });
  });
});

describe('downloads', () => {
  it('POST /downloads resolves the URL and queues a download the runner accepts', async () => {
    const imageId = await backup(2, 'snap-dl');
    await vms.update(2, {}, { remove: ['lock'] });
    const shown = await call('GET', `/images/${imageId}`, admin);
    expect(shown.body.downloadUrls).toEqual(['restic://1/snap-dl/disk.0.raw', 'restic://1/snap-dl/vm.xml']);
    const res = await call('POST', '/downloads', {
      ...admin,
      body: { url: 'restic://1/snap-dl/disk.0.raw', toPath: '/tmp/out/disk.raw' },
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ kind: 'download', state: 'QUEUED', imageId, hostId: 1 });
    const input = await machineInput(res.body.id);
    const admitted = await admitMaintenance(input);
    expect(Task.parse({ ...admitted.task, taskId: 'x/RunOnHost', token: 't' })).toMatchObject({
      kind: 'download',
      vmId: 2,
      backupId: 'snap-dl',
      file: 'disk.0.raw',
      toPath: '/tmp/out/disk.raw',
    });
    await commitMaintenance({ ...input, host: { path: '/tmp/out/disk.raw', size: 1234 } });
    expect(await executions.get(res.body.id)).toMatchObject({ phase: 'done', bytesDone: 1234 });
  });

  it('answers 404 for an unknown datastore, backup or file, 400 for a bad URL or path', async () => {
    const post = (url: string, toPath = '/tmp/x') =>
      call('POST', '/downloads', { ...admin, body: { url, toPath } });
    expect((await post('restic://77/snap-dl/disk.0.raw')).body).toEqual({
      error: 'NotFound',
      message: 'Datastore 77 does not exist',
    });
    expect((await post('restic://1/nope/disk.0.raw')).body).toEqual({
      error: 'NotFound',
      message: 'Datastore 1 has no backup nope',
    });
    expect((await post('restic://1/snap-dl/disk.9.raw')).status).toBe(404);
    expect((await post('s3://1/snap-dl/disk.0.raw')).body.message).toMatch(/^url: unknown scheme/);
    expect((await post('rsync://1/2/snap-dl/disk.0.raw')).body.message).toContain('restic datastore');
    expect((await post('restic://1/snap-dl/disk.0.raw', '-rf')).body.message).toBe(
      'toPath: must not start with -',
    );
    expect((await post('restic://1/snap-dl/disk.0.raw', '/tmp/../etc/x')).body.message).toBe(
      'toPath: must not contain ..',
    );
    expect((await post('restic://1/snap-dl/disk.0.raw', 'a\nb')).status).toBe(400);
  });

  it("records who asked: an admin's download is not confined, a user's relative path is accepted", async () => {
    const res = await call('POST', '/downloads', {
      ...admin,
      body: { url: 'restic://1/snap-dl/vm.xml', toPath: '/tmp/admin/vm.xml', hostId: 1 },
    });
    expect(res.status).toBe(202);
    const input = await machineInput(res.body.id);
    expect(input.confine).toBe(false);
    expect((await admitMaintenance(input)).task).toMatchObject({
      toPath: '/tmp/admin/vm.xml',
      confine: false,
    });
    // Other kinds carry no confine of their own: the machine's field is null for them.
    const monitor = await admitMaintenance({ ...input, kind: 'monitor', imageId: null, backupId: null });
    expect(monitor.task).toMatchObject({ kind: 'monitor', confine: null, toPath: null });
  });

  it('a user may not name a host (403, nothing queued); their absolute toPath is queued, and the runner refuses it', async () => {
    await seedUser('dave', dave.token, 'user', 'users');
    const imageId = (await listImages({ datastoreId: 1 })).find((i) => i.source === 'snap-dl')?.id as number;
    await images.update(imageId, { owner: 'dave', group: 'users' });
    await datastores.update(1, { owner: 'dave', group: 'users' });
    const url = 'restic://1/snap-dl/disk.0.raw';
    const before = (await pendingRequests()).length;

    const named = await call('POST', '/downloads', {
      ...dave,
      body: { url, toPath: 'x/disk.raw', hostId: 1 },
    });
    expect(named.status).toBe(403);
    expect(named.body).toEqual({ error: 'Forbidden', message: 'only admins may name a host' });
    expect((await pendingRequests()).length).toBe(before);

    const keys = '/root/.ssh/authorized_keys';
    const res = await call('POST', '/downloads', { ...dave, body: { url, toPath: keys } });
    expect(res.status).toBe(202);
    const input = await machineInput(res.body.id);
    expect(input.confine).toBe(true);
    const task = Task.parse({ ...(await admitMaintenance(input)).task, taskId: 'x/RunOnHost', token: 't' });
    expect(task).toMatchObject({ kind: 'download', toPath: keys, confine: true });

    // The runner of the host, with its restore roots: refused before anything is read or written.
    const written: string[] = [];
    const roots = [join(plane.home, 'restores')];
    const ctx = {
      restoreRoots: roots,
      signal: new AbortController().signal,
      progress: { phase: () => {}, bytes: () => {} },
      target: async () => ({ id: 1, attributes: {}, secrets: {} }),
      drivers: fakeDrivers(
        {},
        {
          download: async (_t, ref) => {
            written.push(ref.toPath);
            return { size: 0 };
          },
        },
      ),
    } as unknown as TaskContext;
    await expect(runDownload(task as DownloadTask, ctx)).rejects.toMatchObject({
      name: 'Forbidden',
      message: `download path "${keys}" is outside this host's restore roots (${roots[0]}); only an admin may name another folder`,
    });
    expect(written).toEqual([]);

    // The same user's relative path lands under the first root.
    const relative = await call('POST', '/downloads', { ...dave, body: { url, toPath: 'dave/disk.raw' } });
    expect(relative.status).toBe(202);
    const relTask = Task.parse({
      ...(await admitMaintenance(await machineInput(relative.body.id))).task,
      taskId: 'y/RunOnHost',
      token: 't',
    });
    ctx.drivers = fakeDrivers(
      {},
      {
        download: async (_t, ref) => {
          written.push(ref.toPath);
          await writeFile(ref.toPath, 'disk');
          return { size: 4 };
        },
      },
    );
    await expect(runDownload(relTask as DownloadTask, ctx)).resolves.toEqual({
      path: join(roots[0] as string, 'dave', 'disk.raw'),
      size: 4,
    });
  });
});
