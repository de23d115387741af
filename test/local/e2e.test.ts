/**
 * Local mode end to end: `localUp` in a temporary home, the real API, dispatcher, state machines
 * (synthesized from the CDK app) and emulators, with a test responder playing the host's runner
 * over the real SQS and Step Functions clients. Then `localDown`, `localUp`: the data is kept.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLocalCredentials } from '#local/credentials.ts';
import { localDown } from '#local/down.ts';
import { freeStackPorts } from '#local/ports.ts';
import { localUp } from '#local/up.ts';
import { hostBody } from '../helpers/host-key.ts';
import { apiCall, type Connection, receiveTask, executionEnded as waitEnded } from './responder.ts';

let home: string;
let endpoint: string;
let token: string;
let sqs: SQSClient;
let sfn: SFNClient;
let ports: Record<'api' | 'dynamodb' | 'sqs' | 'stepfunctions' | 'lambda', number>;

const conn = (): Connection => ({ endpoint, token });
const api = (method: string, path: string, body?: unknown, auth = true) =>
  apiCall(conn(), method, path, body, auth);

interface HostTask {
  kind: string;
  taskId: string;
  token: string;
  failedTaskId?: string;
  imageId?: number;
  vm?: { id: number };
}

/** The next task on the host queue (the runner's side). */
const nextTask = async (queueUrl: string, timeoutMs?: number) =>
  (await receiveTask(sqs, queueUrl, timeoutMs)) as HostTask;
const executionEnded = (id: string, timeoutMs?: number) => waitEnded(conn(), id, timeoutMs);

let hostQueue: string;
let vmId: number;
let datastoreId: number;
let succeededExecution: string;
let readyImage: number;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-'));
  ports = await freeStackPorts();
  await writeFile(
    join(home, 'config.json'),
    JSON.stringify({ ports, heartbeatSeconds: 3, runner: false, monitorIntervalMinutes: 0 }),
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
}, 120_000);

afterAll(async () => {
  await localDown({ home });
  sqs?.destroy();
  sfn?.destroy();
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe('local mode, end to end', () => {
  it('writes endpoint.json 0600 with the endpoint and a token the API accepts', async () => {
    const saved = JSON.parse(await readFile(join(home, 'endpoint.json'), 'utf8'));
    expect(saved).toEqual({ endpoint, token });
    expect((await stat(join(home, 'endpoint.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    // The token lives in endpoint.json only: never in the supervisor's log or command line.
    expect(await readFile(join(home, 'logs', 'supervisor.log'), 'utf8')).not.toContain(token);
    expect((await api('GET', '/hosts', undefined, false)).status).toBe(401);
    expect((await api('GET', '/hosts')).status).toBe(200);
    expect((await api('GET', '/nowhere')).body).toEqual({
      error: 'NotFound',
      message: 'no route for GET /nowhere',
    });
  });

  it('runs the Authorizer function before the Api one: a bad token gets its 401; changes land in the audit trail', async () => {
    const bad = await apiCall({ endpoint, token: 'lb_not-a-token' }, 'GET', '/hosts', undefined, true);
    expect(bad).toMatchObject({ status: 401, body: { error: 'Unauthorized', message: 'invalid token' } });
    const group = await api('POST', '/groups', { name: 'e2e' });
    expect(group.status).toBe(201);
    const trail = await api('GET', '/audit?object=group/e2e');
    expect(trail.status).toBe(200);
    expect(trail.body.items).toEqual([
      expect.objectContaining({ user: 'admin', route: 'POST /groups', object: 'group/e2e', status: 201 }),
    ]);
  });

  it('sets up a datastore, a host and a VM through the API', async () => {
    const ds = await api('POST', '/datastores', {
      name: 'ds-local',
      driver: 'restic',
      attributes: { BASE_PATH: '/srv/backup', RESTIC_PASSWORD: 'correct horse' },
    });
    expect(ds.status).toBeLessThan(300);
    expect(JSON.stringify(ds.body)).not.toContain('correct horse');
    datastoreId = ds.body.id;
    const host = await api('POST', '/hosts', hostBody('kvm-1'));
    expect(host.status).toBeLessThan(300);
    hostQueue = host.body.queueUrl;
    expect(hostQueue).toMatch(/lifeboat-host-\d+$/);
    // Its dead letters go to the shared queue the control plane created at start, as in AWS.
    const { QueueUrl: dlq } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'lifeboat-dlq-hosts' }));
    const [hostAttrs, dlqAttrs] = await Promise.all(
      [hostQueue, dlq].map((QueueUrl) =>
        sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] })),
      ),
    );
    expect(JSON.parse(hostAttrs?.Attributes?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: dlqAttrs?.Attributes?.QueueArn,
      maxReceiveCount: 5,
    });
    expect(dlqAttrs?.Attributes?.MessageRetentionPeriod).toBe('1209600');
    const inventory = await api('PUT', `/hosts/${host.body.id}/inventory`, {
      vms: [
        {
          domain: 'web-1',
          state: 'RUNNING',
          disks: [
            {
              id: 0,
              target: 'vda',
              source: '/var/lib/libvirt/images/web-1.qcow2',
              format: 'qcow2',
              size: 1 << 30,
            },
          ],
          nics: [],
          template: '<domain type="kvm"><name>web-1</name></domain>',
        },
      ],
    });
    expect(inventory.status).toBeLessThan(300);
    const vms = await api('GET', '/vms');
    const vm = vms.body.items.find((v: { domain: string }) => v.domain === 'web-1');
    expect(vm.hostId).toBe(host.body.id);
    vmId = vm.id;
  });

  it('(a) a backup the host completes: execution SUCCEEDED, image READY with sizes, in BACKUP_IDS', async () => {
    const requested = await api('POST', `/vms/${vmId}/backup`, { datastoreId });
    expect(requested.status).toBe(202);
    expect(requested.body.state).toBe('QUEUED');
    const task = await nextTask(hostQueue);
    expect(task.kind).toBe('backup');
    expect(task.taskId).toBe(`${requested.body.id}/RunOnHost`);
    expect(task.vm?.id).toBe(vmId);
    expect(JSON.stringify(task)).not.toContain('correct horse');
    await sfn.send(
      new SendTaskSuccessCommand({
        taskToken: task.token,
        output: JSON.stringify({
          backupId: 'snap-0001',
          disks: [{ id: 0, size: 43_122_688, virtualSize: 1 << 30, format: 'raw', file: 'disk.0.raw' }],
          increment: null,
          template: '<domain type="kvm"><name>web-1</name></domain>',
          durationMs: 1234,
        }),
      }),
    );
    const execution = await executionEnded(requested.body.id);
    expect(execution.state).toBe('SUCCEEDED');
    succeededExecution = execution.id;
    const image = (await api('GET', `/images/${task.imageId}`)).body;
    expect(image.state).toBe('READY');
    expect(image.source).toBe('snap-0001');
    expect(image.size).toBe(43_122_688);
    expect(image.disks[0]).toMatchObject({ id: 0, size: 43_122_688, virtualSize: 1 << 30 });
    readyImage = image.id;
    const vm = (await api('GET', `/vms/${vmId}`)).body;
    expect(vm.backups.BACKUP_IDS).toContain(image.id);
    expect(vm.lock).toBeUndefined();
  });

  it('(b) a backup the host fails: Cleanup runs on the host, execution FAILED with the error, image ERROR', async () => {
    const requested = await api('POST', `/vms/${vmId}/backup`, { datastoreId });
    expect(requested.status).toBe(202);
    const task = await nextTask(hostQueue);
    await sfn.send(
      new SendTaskFailureCommand({ taskToken: task.token, error: 'DiskGone', cause: 'disk vda vanished' }),
    );
    const cleanup = await nextTask(hostQueue);
    expect(cleanup.kind).toBe('cleanup');
    expect(cleanup.failedTaskId).toBe(`${requested.body.id}/RunOnHost`);
    expect(cleanup.taskId).toBe(`${requested.body.id}/Cleanup`);
    await sfn.send(new SendTaskSuccessCommand({ taskToken: cleanup.token, output: '{"cleaned":[]}' }));
    const execution = await executionEnded(requested.body.id);
    expect(execution.state).toBe('FAILED');
    expect(execution.error).toEqual({ name: 'DiskGone', message: 'disk vda vanished' });
    expect((await api('GET', `/images/${task.imageId}`)).body.state).toBe('ERROR');
    const vm = (await api('GET', `/vms/${vmId}`)).body;
    expect(vm.lock).toBeUndefined();
    expect(vm.backups.BACKUP_IDS).not.toContain(task.imageId);
  });

  it('(c) a host that never answers: heartbeat timeout, TIMED_OUT, VM unlocked', async () => {
    const requested = await api('POST', `/vms/${vmId}/backup`, { datastoreId });
    const task = await nextTask(hostQueue);
    expect(task.kind).toBe('backup');
    // No heartbeat: after 3 s the state machine gives up and asks the host to clean up.
    const cleanup = await nextTask(hostQueue, 15_000);
    expect(cleanup.kind).toBe('cleanup');
    await sfn.send(new SendTaskSuccessCommand({ taskToken: cleanup.token, output: '{"cleaned":[]}' }));
    const execution = await executionEnded(requested.body.id);
    expect(execution.state).toBe('TIMED_OUT');
    expect((await api('GET', `/vms/${vmId}`)).body.lock).toBeUndefined();
  });

  it('keeps everything across localDown and localUp', async () => {
    expect(await localDown({ home })).toEqual({ stopped: true });
    await expect(fetch(`${endpoint}/health`)).rejects.toThrow();
    expect(await localDown({ home })).toEqual({ stopped: false });
    const again = await localUp({ home });
    expect(again).toMatchObject({ endpoint, token, alreadyRunning: false });
    expect((await localUp({ home })).alreadyRunning).toBe(true);
    expect((await api('GET', `/executions/${succeededExecution}`)).body.state).toBe('SUCCEEDED');
    expect((await api('GET', `/images/${readyImage}`)).body.state).toBe('READY');
    expect((await api('GET', `/vms/${vmId}`)).body.backups.BACKUP_IDS).toContain(readyImage);
    const hosts = (await api('GET', '/hosts')).body.items;
    expect(hosts.map((h: { queueUrl: string }) => h.queueUrl)).toContain(hostQueue);
  }, 120_000);
});
