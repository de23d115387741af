/**
 * What people watch and who is told, on DynamoDB Local with the steps driven as the state
 * machines drive them: the EMF metric lines a backup's end and a capacity sample print on
 * stdout, GET /stats, the missed-backup check, and the signed webhook a real local HTTP server
 * receives for a failed backup, a missed one and a failed verification.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { dispatch } from '#functions/dispatcher/handler.ts';
import { verifyFailed } from '#functions/operations/alerts.ts';
import { recordCapacity } from '#functions/operations/capacity.ts';
import { endOperation } from '#functions/operations/end.ts';
import { checkMissedBackups } from '#functions/operations/missed-backups.ts';
import { executions } from '#functions/repo/executions.ts';
import { requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { secretStore } from '#functions/secrets.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as markFailed } from '#functions/tasks/mark-failed.ts';
import { handler as release } from '#functions/tasks/release.ts';
import { sqsClient } from '#platform/aws.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { STATE_MACHINE_ENV, useControlPlane } from '../helpers/control-plane-fixture.ts';
import { emfLines } from '../helpers/emf.ts';

const admin = { token: 'admin-token-observability' };
const NAMES = ['obs-ok', 'obs-failed', 'obs-scheduled'];
const SECRET = 'webhook-shared-secret-123';

function domain(name: string) {
  const disk = { id: 0, target: 'vda', source: `/images/${name}.qcow2`, format: 'qcow2', size: 1000 };
  return {
    domain: name,
    state: 'RUNNING',
    disks: [{ ...disk, canIncrement: true }],
    nics: [],
    template: '<domain/>',
  };
}

const plane = useControlPlane({
  name: 'observability',
  env: {
    ...STATE_MACHINE_ENV,
    MONITOR_INTERVAL_MINUTES: '0',
  },
  sfn: true,
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw',
  inventory: NAMES.map(domain),
});

const vmIds = new Map<string, number>();

/** What the webhook received: headers and the raw body. */
interface Delivery {
  signature: string | undefined;
  event: string | undefined;
  body: string;
}
const deliveries: Delivery[] = [];
let status = 204;
let server: Server;

beforeAll(async () => {
  for (const vm of await vms.list()) vmIds.set(vm.domain, vm.id);
  await seedUser('carol', 'carol-token-observability', 'user', 'other');
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({
        signature: req.headers['x-lifeboat-signature'] as string | undefined,
        event: req.headers['x-lifeboat-event'] as string | undefined,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.NOTIFY_WEBHOOK_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  await secretStore().put('notify/webhook', { NOTIFY_WEBHOOK_SECRET: SECRET });
});
afterAll(async () => {
  delete process.env.NOTIFY_WEBHOOK_URL;
  await new Promise((resolve) => server?.close(resolve));
});

/** The deliveries of `kind`, their signatures checked against the shared secret, parsed. */
function received(kind: string): Record<string, unknown>[] {
  return deliveries
    .filter((d) => d.event === kind)
    .map((d) => {
      const expected = `sha256=${createHmac('sha256', SECRET).update(d.body).digest('hex')}`;
      expect(d.signature).toBe(expected);
      return JSON.parse(d.body) as Record<string, unknown>;
    });
}

/** A backup of `vm` queued by the API, started by the dispatcher and admitted: its state input. */
async function startBackup(vm: string) {
  const res = await call('POST', `/vms/${vmIds.get(vm)}/backup`, { ...admin, body: { datastoreId: 1 } });
  expect(res.status).toBe(202);
  await dispatch();
  const input = (await requests.get(res.body.id)).input as Record<string, unknown> & { executionId: string };
  return { input, admitted: await admitBackup(input) };
}

describe('metrics', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a backup that succeeds prints BackupsSucceeded, BackupBytes and BackupSeconds for its datastore, once', async () => {
    const { input, admitted } = await startBackup('obs-ok');
    const host = {
      backupId: 'snap-ok',
      disks: [{ id: 0, size: 300, virtualSize: 1000, format: 'raw', file: 'disk.0.raw' }],
      increment: admitted.task.increment,
      template: '<domain/>',
      durationMs: 1,
    };
    const commit = await commitBackup({ ...input, admit: admitted, host });
    const lines = await emfLines(() => release({ ...input, admit: admitted, host, commit }));
    expect(lines).toHaveLength(1);
    const [doc] = lines;
    expect(doc).toMatchObject({
      Datastore: '1',
      BackupsSucceeded: 1,
      BackupsFailed: 0,
      BackupBytes: 300,
      _aws: { CloudWatchMetrics: [{ Namespace: 'Lifeboat', Dimensions: [['Datastore'], []] }] },
    });
    expect(doc?.BackupSeconds).toBeGreaterThanOrEqual(0);
    // A retried Release changes nothing and counts nothing again.
    expect(await emfLines(() => release({ ...input, admit: admitted, host, commit }))).toEqual([]);
  });

  it('a backup that fails prints BackupsFailed, without bytes', async () => {
    const { input } = await startBackup('obs-failed');
    const error = { Error: 'DatastoreUnreachable', Cause: 'ssh: connection refused' };
    await markFailed({ ...input, error });
    const lines = await emfLines(() => release({ ...input, error, markFailed: {} }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ Datastore: '1', BackupsSucceeded: 0, BackupsFailed: 1 });
    expect(lines[0]).not.toHaveProperty('BackupBytes');
  });

  it('a capacity sample prints DatastoreFreeBytes; an unknown FREE prints nothing', async () => {
    const known = await emfLines(() =>
      recordCapacity(1, { totalBytes: 1000, freeBytes: 400, usedBytes: 600 }, 'obs-monitor-1'),
    );
    expect(known).toEqual([expect.objectContaining({ Datastore: '1', DatastoreFreeBytes: 400 })]);
    const unknown = await emfLines(() =>
      recordCapacity(1, { totalBytes: null, freeBytes: null, usedBytes: 10 }, 'obs-monitor-2'),
    );
    expect(unknown).toEqual([]);
  });
});

describe('GET /stats', () => {
  it('counts the backups of the last 24 h and 7 days, bytes, median, datastores', async () => {
    const res = await call('GET', '/stats', admin);
    expect(res.status).toBe(200);
    expect(res.body.backups['24h']).toEqual({
      succeeded: 1,
      failed: 1,
      bytes: 300,
      medianSeconds: expect.any(Number),
    });
    expect(res.body.backups['7d']).toMatchObject({ succeeded: 1, failed: 1, bytes: 300 });
    expect(res.body.datastores).toEqual([expect.objectContaining({ id: 1, name: 'repo', usedBytes: 10 })]);
    expect(res.body.missedBackups).toEqual([]);
    expect(res.body.verifyFailures).toBe(0);
  });

  it('a user sees only what they may use; an unknown parameter is a 400 that changes nothing', async () => {
    const carol = { token: 'carol-token-observability' };
    const res = await call('GET', '/stats', carol);
    expect(res.status).toBe(200);
    expect(res.body.backups['24h']).toEqual({ succeeded: 0, failed: 0, bytes: 0, medianSeconds: null });
    expect(res.body.datastores).toEqual([]);
    const bad = await call('GET', '/stats?since=yesterday', admin);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('ValidationError');
  });
});

describe('notifications', () => {
  it('a failed backup is notified to the webhook, signed; a webhook that refuses fails nothing', async () => {
    expect(received('backup.failed')).toEqual([
      expect.objectContaining({
        source: 'lifeboat',
        kind: 'backup.failed',
        vmId: vmIds.get('obs-failed'),
        datastoreId: 1,
        error: { name: 'DatastoreUnreachable', message: 'ssh: connection refused' },
        message: expect.stringContaining('failed: DatastoreUnreachable: ssh: connection refused'),
      }),
    ]);
    // The webhook answers 500: the backup still ends FAILED, once, its VM unlocked.
    status = 500;
    try {
      const { input } = await startBackup('obs-failed');
      const error = { Error: 'DatastoreUnreachable', Cause: 'again' };
      await markFailed({ ...input, error });
      let ended: Awaited<ReturnType<typeof release>> | undefined;
      const lines = await emfLines(async () => {
        ended = await release({ ...input, error, markFailed: {} });
      });
      expect(ended?.state).toBe('FAILED');
      // Counted twice: the failed backup, and the notification that could not be delivered.
      expect(lines).toEqual([
        expect.objectContaining({ BackupsFailed: 1 }),
        expect.objectContaining({ NotifyFailures: 1 }),
      ]);
      expect((await vms.get(vmIds.get('obs-failed') as number)).lock).toBeUndefined();
      expect(received('backup.failed')).toHaveLength(2);
    } finally {
      status = 204;
    }
  });

  it('a backup someone cancelled is counted as not succeeded but notified to nobody', async () => {
    const before = received('backup.failed').length;
    const { input } = await startBackup('obs-failed');
    const record = await executions.get(input.executionId);
    const ending = {
      state: 'ABORTED' as const,
      endedAt: new Date().toISOString(),
      error: { name: 'Cancelled', message: 'cancelled by admin' },
    };
    const lines = await emfLines(async () => {
      expect(await endOperation(record, ending)).toBe(true);
    });
    expect(lines).toEqual([expect.objectContaining({ BackupsFailed: 1 })]);
    expect(received('backup.failed')).toHaveLength(before);
  });

  it('a VM missing its scheduled backup is notified once, and counted in the MissedBackups metric', async () => {
    const vmId = vmIds.get('obs-scheduled') as number;
    const res = await call('POST', `/vms/${vmId}/schedules`, {
      ...admin,
      body: { time: 'now', repeat: 'hourly', datastoreId: 1 },
    });
    expect(res.status).toBe(201);
    // Nothing is missed yet: the schedule only began.
    const soon = new Date(Date.now() + 60_000);
    expect(await checkMissedBackups(soon)).toEqual([]);
    // Three hours later, with no backup: missed (two hourly periods passed), told once.
    const later = new Date(Date.now() + 3 * 3_600_000);
    let newly: number[] = [];
    const lines = await emfLines(async () => {
      newly = await checkMissedBackups(later);
    });
    expect(newly).toEqual([vmId]);
    expect(lines).toEqual([expect.objectContaining({ MissedBackups: 1 })]);
    expect(received('backup.missed')).toEqual([
      expect.objectContaining({
        kind: 'backup.missed',
        vmId,
        message: expect.stringContaining('never backed up'),
      }),
    ]);
    // Before the next check is due nothing runs; at the next one it is still missed, not told again.
    expect(await checkMissedBackups(new Date(later.getTime() + 60_000))).toEqual([]);
    expect(await checkMissedBackups(new Date(later.getTime() + 6 * 60_000))).toEqual([]);
    expect(received('backup.missed')).toHaveLength(1);
  });

  it('a failed verification is counted and notified', async () => {
    const lines = await emfLines(() =>
      verifyFailed({ datastoreId: 1, imageId: 9, message: 'disk.0.raw: sha256 mismatch' }),
    );
    expect(lines).toEqual([expect.objectContaining({ Datastore: '1', VerifyFailures: 1 })]);
    expect(received('verify.failed')).toEqual([
      expect.objectContaining({
        imageId: 9,
        message: 'verification of image 9 failed: disk.0.raw: sha256 mismatch',
      }),
    ]);
  });

  it('without the shared secret nothing is sent unsigned, and the secret never reaches a log', async () => {
    const before = deliveries.length;
    await secretStore().delete('notify/webhook');
    const logged: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((line: string) => {
      logged.push(line);
    });
    try {
      expect(await verifyFailed({ message: 'x' })).toBe(false);
    } finally {
      spy.mockRestore();
      await secretStore().put('notify/webhook', { NOTIFY_WEBHOOK_SECRET: SECRET });
    }
    expect(deliveries.length).toBe(before);
    expect(logged.join('\n')).toContain('notification not sent');
    expect(logged.join('\n')).not.toContain(SECRET);
    expect(logged.join('\n')).not.toContain('/hook');
  });

  it('with NOTIFY_TOPIC_ARN, publishes to the SNS topic instead of the webhook', async () => {
    process.env.AWS_ENDPOINT_URL_SNS = plane.sqs.endpoint;
    const sns = new SNSClient({ region: process.env.AWS_REGION || 'us-east-1' });
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'lifeboat-alarms-test' }));
    const { QueueUrl } = await sqsClient().send(new CreateQueueCommand({ QueueName: 'notify-sub' }));
    const attrs = await sqsClient().send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    await sns.send(
      new SubscribeCommand({
        TopicArn,
        Protocol: 'sqs',
        Endpoint: attrs.Attributes?.QueueArn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    const before = deliveries.length;
    process.env.NOTIFY_TOPIC_ARN = TopicArn;
    try {
      expect(await verifyFailed({ datastoreId: 1, imageId: 12, message: 'pack 3f2a: hash mismatch' })).toBe(
        true,
      );
    } finally {
      delete process.env.NOTIFY_TOPIC_ARN;
      delete process.env.AWS_ENDPOINT_URL_SNS;
      sns.destroy();
    }
    expect(deliveries.length).toBe(before);
    const got = await sqsClient().send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 2 }));
    expect(got.Messages?.map((m) => JSON.parse(m.Body ?? '{}'))).toEqual([
      expect.objectContaining({
        source: 'lifeboat',
        kind: 'verify.failed',
        imageId: 12,
        message: 'verification of image 12 failed: pack 3f2a: hash mismatch',
      }),
    ]);
  });
});
