/**
 * Maintenance in local mode, end to end: the real API, dispatcher, Maintenance state machine
 * (synthesized from the CDK app) and emulators, with this test playing the host's runner over
 * the real SQS and Step Functions clients (config runner: false). Covers KEEP_LAST retention,
 * image delete, downloads and a datastore's scheduled verify: each reaches the host as its task
 * with the right fields (a verify one at a time on a host limited to one).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '#core/contracts/tasks.ts';
import { readLocalCredentials } from '#local/credentials.ts';
import { localDown } from '#local/down.ts';
import { freeStackPorts } from '#local/ports.ts';
import { localUp } from '#local/up.ts';
import { unsealSecrets } from '#platform/sealed-secrets.ts';
import { hostBody, TEST_HOST_KEY } from '../helpers/host-key.ts';
import { apiCall, type Connection, receiveTask, executionEnded as waitEnded } from './responder.ts';

let home: string;
let endpoint: string;
let token: string;
let sqs: SQSClient;
let sfn: SFNClient;

const conn = (): Connection => ({ endpoint, token });
const api = (method: string, path: string, body?: unknown) => apiCall(conn(), method, path, body);
const executionEnded = (id: string) => waitEnded(conn(), id);

/** The next task on the host queue, validated as the runner validates it. */
async function nextTask(queueUrl: string) {
  const raw = (await receiveTask(sqs, queueUrl)) as Record<string, unknown>;
  return { raw, task: Task.parse(raw) };
}

async function answer(taskToken: string, output: unknown): Promise<void> {
  await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
}

let hostQueue: string;
let hostId: number;
let vmId: number;
let datastoreId: number;
const imageIds: number[] = [];

/** A backup the host completes with `backupId`; answers the image id. */
async function backup(backupId: string): Promise<number> {
  const requested = await api('POST', `/vms/${vmId}/backup`, { datastoreId });
  expect(requested.status).toBe(202);
  const { task } = await nextTask(hostQueue);
  expect(task.kind).toBe('backup');
  await answer(task.token, {
    backupId,
    disks: [{ id: 0, size: 4096, virtualSize: 1 << 20, format: 'raw', file: 'disk.0.raw' }],
    increment: null,
    template: '<domain type="kvm"><name>db-1</name></domain>',
    durationMs: 5,
  });
  expect((await executionEnded(requested.body.id)).state).toBe('SUCCEEDED');
  return (task as { imageId: number }).imageId;
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'lifeboat-maint-e2e-'));
  const ports = await freeStackPorts();
  await writeFile(
    join(home, 'config.json'),
    // The Scheduler emulator looks for due schedules every second (a scheduled verify below).
    JSON.stringify({
      ports,
      heartbeatSeconds: 5,
      runner: false,
      monitorIntervalMinutes: 0,
      schedulerIntervalSeconds: 1,
    }),
  );
  ({ endpoint, token } = await localUp({ home }));
  // The emulators take only requests signed with this start's key.
  const credentials = await readLocalCredentials(home);
  sqs = new SQSClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${ports.sqs}`, credentials });
  sfn = new SFNClient({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${ports.stepfunctions}`,
    credentials,
  });

  const ds = await api('POST', '/datastores', {
    name: 'ds-maint',
    driver: 'restic',
    attributes: { BASE_PATH: '/srv/backup', RESTIC_PASSWORD: 'correct horse' },
  });
  datastoreId = ds.body.id;
  const host = await api('POST', '/hosts', hostBody('kvm-m'));
  hostId = host.body.id;
  hostQueue = host.body.queueUrl;
  const disk = {
    id: 0,
    target: 'vda',
    source: '/var/lib/libvirt/images/db-1.qcow2',
    format: 'qcow2',
    size: 1 << 20,
  };
  const vm = { domain: 'db-1', state: 'RUNNING', disks: [disk], nics: [], template: '<domain/>' };
  expect((await api('PUT', `/hosts/${hostId}/inventory`, { vms: [vm] })).status).toBe(200);
  vmId = (await api('GET', '/vms')).body.items.find((v: { domain: string }) => v.domain === 'db-1').id;
}, 120_000);

afterAll(async () => {
  await localDown({ home });
  sqs?.destroy();
  sfn?.destroy();
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe('maintenance in local mode', () => {
  it('KEEP_LAST=2: the third backup sends rm of the first backup to the host, then its record is gone', async () => {
    expect((await api('PUT', `/vms/${vmId}/backup-config`, { pairs: { KEEP_LAST: '2' } })).status).toBe(200);
    for (const id of ['snap-1', 'snap-2', 'snap-3']) imageIds.push(await backup(id));
    expect((await api('GET', `/vms/${vmId}`)).body.backups.BACKUP_IDS).toEqual(imageIds.slice(1));

    const { task, raw } = await nextTask(hostQueue);
    expect(task).toMatchObject({ kind: 'rm', vmId, backupId: 'snap-1', datastore: { id: datastoreId } });
    expect(raw).toMatchObject({ file: null, toPath: null }); // the machine's other fields, null
    expect(JSON.stringify(raw)).not.toContain('correct horse');
    expect((await api('GET', `/images/${imageIds[0]}`)).body.state).toBe('DELETING');
    await answer(task.token, { removed: true });
    const execution = await executionEnded(task.taskId.split('/')[0] as string);
    expect(execution).toMatchObject({ kind: 'delete', state: 'SUCCEEDED', imageId: imageIds[0] });
    expect((await api('GET', `/images/${imageIds[0]}`)).status).toBe(404);
  }, 120_000);

  it('image delete: 202, rm task with the right fields, record gone after the host answers', async () => {
    const deleted = await api('DELETE', `/images/${imageIds[1]}`);
    expect(deleted.status).toBe(202);
    expect(deleted.body).toMatchObject({ kind: 'delete', state: 'QUEUED', imageId: imageIds[1] });
    const { task } = await nextTask(hostQueue);
    expect(task).toMatchObject({
      kind: 'rm',
      taskId: `${deleted.body.id}/RunOnHost`,
      vmId,
      backupId: 'snap-2',
      datastore: { id: datastoreId, driver: 'restic', sealedSecrets: expect.stringMatching(/^v1\./) },
    });
    // Sealed to the host: its key opens the password, the message itself holds only ciphertext.
    const sealed = (task as { datastore: { sealedSecrets: string } }).datastore.sealedSecrets;
    expect(unsealSecrets(sealed, TEST_HOST_KEY.privateKey, `ds/${datastoreId}`)).toMatchObject({
      RESTIC_PASSWORD: 'correct horse',
    });
    await answer(task.token, { removed: true });
    expect((await executionEnded(deleted.body.id)).state).toBe('SUCCEEDED');
    expect((await api('GET', `/images/${imageIds[1]}`)).status).toBe(404);
    expect((await api('GET', `/vms/${vmId}`)).body.backups.BACKUP_IDS).toEqual([imageIds[2]]);
  });

  it('download URL: a download task with the file and toPath; the execution records the size', async () => {
    const image = (await api('GET', `/images/${imageIds[2]}`)).body;
    expect(image.downloadUrls).toEqual([
      `restic://${datastoreId}/snap-3/disk.0.raw`,
      `restic://${datastoreId}/snap-3/vm.xml`,
    ]);
    const requested = await api('POST', '/downloads', {
      url: image.downloadUrls[0],
      toPath: '/tmp/lb/disk.raw',
    });
    expect(requested.status).toBe(202);
    const { task } = await nextTask(hostQueue);
    expect(task).toMatchObject({
      kind: 'download',
      vmId,
      backupId: 'snap-3',
      file: 'disk.0.raw',
      toPath: '/tmp/lb/disk.raw',
    });
    await answer(task.token, { path: '/tmp/lb/disk.raw', size: 4096 });
    expect(await executionEnded(requested.body.id)).toMatchObject({ state: 'SUCCEEDED', bytesDone: 4096 });
    expect(
      (await api('POST', '/downloads', { url: `restic://${datastoreId}/gone/vm.xml`, toPath: '/tmp/x' }))
        .status,
    ).toBe(404);
  });

  it("a datastore's scheduled verify sends one verify per READY image, one at a time on a host limited to one; results land on the images", async () => {
    expect((await api('PUT', `/vms/${vmId}/backup-config`, { pairs: { KEEP_LAST: '5' } })).status).toBe(200);
    imageIds.push(await backup('snap-4'));
    const ready = [imageIds[2], imageIds[3]];
    expect((await api('PATCH', `/hosts/${hostId}`, { maxBackupsHost: 1 })).status).toBe(200);
    const created = await api('POST', `/datastores/${datastoreId}/schedules`, {
      action: 'verify',
      time: '+1',
    });
    expect(created.status).toBe(201);

    const verified: unknown[] = [];
    for (let i = 0; i < ready.length; i++) {
      const { task } = await nextTask(hostQueue);
      expect(task).toMatchObject({ kind: 'verify', vmId, datastore: { id: datastoreId } });
      verified.push((task as { backupId: string }).backupId);
      // The other waits for the slot this one holds: nothing more reaches the host meanwhile.
      if (i === 0) await expect(receiveTask(sqs, hostQueue, 4000)).rejects.toThrow(/no task/);
      await answer(task.token, { verified: true });
      expect(await executionEnded(task.taskId.split('/')[0] as string)).toMatchObject({
        kind: 'verify',
        state: 'SUCCEEDED',
      });
    }
    expect(verified.sort()).toEqual(['snap-3', 'snap-4']);
    for (const id of ready) expect((await api('GET', `/images/${id}`)).body.verifyState).toBe('OK');
    const [listed] = (await api('GET', `/datastores/${datastoreId}/schedules`)).body.items;
    expect(listed).toMatchObject({ id: created.body.id, runs: 1, lastExecutionId: expect.any(String) });
  }, 120_000);
});
