/**
 * The HTTP API handler end to end on DynamoDB Local and fauxqs: v2 events in, JSON out.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { datastores } from '#functions/repo/datastores.ts';
import { images } from '#functions/repo/images.ts';
import { requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { sqsClient } from '#platform/aws.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = 'admin-token-0123456789';
const ALICE = 'alice-token-0123456789';
const PASSWORD = 'correct horse battery staple';

const plane = useControlPlane({ name: 'api', secrets: 'subfolder', admin: { token: ADMIN, group: 'admin' } });
beforeAll(async () => {
  await seedUser('alice', ALICE, 'user', 'users');
});

const admin = { token: ADMIN };
const disk = (id: number, extra = {}) => ({
  id,
  target: `vd${'abc'[id]}`,
  source: `/var/lib/libvirt/images/d${id}.qcow2`,
  format: 'qcow2',
  size: 1024,
  ...extra,
});
const domain = (name: string, extra = {}) => ({
  domain: name,
  state: 'RUNNING',
  disks: [disk(0)],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
  ...extra,
});

describe('authentication', () => {
  it('answers 401 without a token or with an unknown one', async () => {
    const none = await call('GET', '/vms');
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('Unauthorized');
    expect((await call('GET', '/vms', { token: 'nope' })).status).toBe(401);
    expect((await call('GET', '/vms', admin)).status).toBe(200);
  });

  it('answers unknown routes with 404 and bad JSON with 400', async () => {
    expect((await call('GET', '/nothing', admin)).status).toBe(404);
    const bad = await call('POST', '/datastores', { ...admin, body: '{oops' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe('body: must be valid JSON');
  });
});

describe('datastores', () => {
  it('creates a restic datastore without ever returning its password', async () => {
    const created = await call('POST', '/datastores', {
      ...admin,
      body: {
        name: 'backups',
        driver: 'restic',
        attributes: { RESTIC_PASSWORD: PASSWORD, RESTIC_CONNECTIONS: 8 },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: 1,
      name: 'backups',
      secretAttributes: ['RESTIC_PASSWORD'],
      secretRef: 'ds/1',
    });
    expect(created.body.attributes.RESTIC_CONNECTIONS).toBe('8');
    const shown = await call('GET', '/datastores/1', admin);
    const listed = await call('GET', '/datastores', admin);
    for (const answer of [created, shown, listed]) expect(answer.raw).not.toContain(PASSWORD);
    expect(JSON.stringify(await datastores.get(1))).not.toContain(PASSWORD);
    expect(await readFile(join(plane.secretsDir, 'ds_1.json'), 'utf8')).toContain(PASSWORD);
  });

  it('refuses bad attributes with a 400 naming the field, and writes nothing', async () => {
    const before = (await datastores.list()).length;
    const missing = await call('POST', '/datastores', {
      ...admin,
      body: { name: 'x', driver: 'restic', attributes: {} },
    });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      error: 'ValidationError',
      message: 'attributes.RESTIC_PASSWORD: required',
    });
    const unknown = await call('POST', '/datastores', {
      ...admin,
      body: { name: 'x', driver: 'rsync', colour: 'red' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toContain('colour');
    const range = await call('POST', '/datastores', {
      ...admin,
      body: { name: 'x', driver: 'restic', attributes: { RESTIC_PASSWORD: 'p', RESTIC_CONNECTIONS: '99' } },
    });
    expect(range.status).toBe(400);
    expect(range.body.message).toMatch(/^attributes\.RESTIC_CONNECTIONS/);
    expect(await datastores.list()).toHaveLength(before);
  });

  it('refuses a second datastore with the same name', async () => {
    const dup = await call('POST', '/datastores', {
      ...admin,
      body: { name: 'backups', driver: 'rsync', attributes: { RSYNC_HOST: 'b1' } },
    });
    expect(dup.status).toBe(409);
  });

  it('patches attributes and replaces the secret without returning it', async () => {
    const patched = await call('PATCH', '/datastores/1', {
      ...admin,
      body: { attributes: { RESTIC_PASSWORD: 'new-password-1', RESTIC_COMPRESSION: 'max' } },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.attributes.RESTIC_COMPRESSION).toBe('max');
    expect(patched.raw).not.toContain('new-password-1');
    expect(await readFile(join(plane.secretsDir, 'ds_1.json'), 'utf8')).toContain('new-password-1');
    const removeRequired = await call('PATCH', '/datastores/1', {
      ...admin,
      body: { attributes: { RESTIC_PASSWORD: '' } },
    });
    expect(removeRequired.status).toBe(400);
  });
});

describe('hosts and inventory', () => {
  it('registers a host with its queue, redriving to the shared host dead-letter queue', async () => {
    const host = await call('POST', '/hosts', { ...admin, body: { name: 'kvm-1' } });
    expect(host.status).toBe(201);
    expect(host.body).toMatchObject({ id: 1, name: 'kvm-1', state: 'INIT', cluster: 'default' });
    expect(host.body.queueUrl).toMatch(/lifeboat-host-1$/);
    expect(host.body.deadLetterQueueUrl).toBeUndefined();
    const attrs = await sqsClient().send(
      new GetQueueAttributesCommand({ QueueUrl: host.body.queueUrl, AttributeNames: ['All'] }),
    );
    expect(attrs.Attributes?.VisibilityTimeout).toBe('60');
    expect(attrs.Attributes?.ReceiveMessageWaitTimeSeconds).toBe('20');
    expect(JSON.parse(attrs.Attributes?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: process.env.HOST_DEAD_LETTER_QUEUE_ARN,
      maxReceiveCount: 5,
    });
    expect(process.env.HOST_DEAD_LETTER_QUEUE_ARN).toMatch(/:lifeboat-dlq-hosts$/);
    // No per-host dead-letter queue any more: the shared one is the only other queue.
    const { QueueUrls } = await sqsClient().send(new ListQueuesCommand({}));
    expect((QueueUrls ?? []).map((u) => u.split('/').pop()).sort()).toEqual([
      'lifeboat-dlq-hosts',
      'lifeboat-host-1',
    ]);
  });

  it('moves a task received 5 times unanswered to the shared dead-letter queue, body intact', async () => {
    const hostQueue = (await call('GET', '/hosts/1', admin)).body.queueUrl;
    const body = JSON.stringify({ v: 1, kind: 'backup', taskId: '41/RunOnHost', vm: { id: 7 } });
    await sqsClient().send(new SendMessageCommand({ QueueUrl: hostQueue, MessageBody: body }));
    for (let i = 0; i < 5; i++) {
      const got = await sqsClient().send(
        new ReceiveMessageCommand({ QueueUrl: hostQueue, VisibilityTimeout: 0, WaitTimeSeconds: 1 }),
      );
      expect(got.Messages?.[0]?.Body, `receive ${i + 1}`).toBe(body);
    }
    const sixth = await sqsClient().send(
      new ReceiveMessageCommand({ QueueUrl: hostQueue, WaitTimeSeconds: 1 }),
    );
    expect(sixth.Messages ?? []).toEqual([]);
    const { QueueUrl: dlq } = await sqsClient().send(
      new GetQueueUrlCommand({ QueueName: 'lifeboat-dlq-hosts' }),
    );
    const dead = await sqsClient().send(new ReceiveMessageCommand({ QueueUrl: dlq, WaitTimeSeconds: 1 }));
    expect(dead.Messages?.map((m) => m.Body)).toEqual([body]);
  });

  it("changes a host's EMULATOR_CPUS and MAX_BACKUPS_HOST (admins), refusing bad values and changing nothing", async () => {
    const set = await call('PATCH', '/hosts/1', {
      ...admin,
      body: { emulatorCpus: '0-1,3', maxBackupsHost: 3 },
    });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ id: 1, emulatorCpus: '0-1,3', maxBackupsHost: 3 });
    for (const body of [{ emulatorCpus: 'all' }, { maxBackupsHost: 0 }, {}, { cluster: 'x' }]) {
      const bad = await call('PATCH', '/hosts/1', { ...admin, body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.error).toBe('ValidationError');
    }
    expect((await call('PATCH', '/hosts/1', { token: ALICE, body: { emulatorCpus: '2' } })).status).toBe(403);
    expect((await call('GET', '/hosts/1', admin)).body).toMatchObject({
      emulatorCpus: '0-1,3',
      maxBackupsHost: 3,
    });
    const cleared = await call('PATCH', '/hosts/1', {
      ...admin,
      body: { emulatorCpus: '', maxBackupsHost: null },
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body.emulatorCpus).toBeUndefined();
    expect(cleared.body.maxBackupsHost).toBeUndefined();
  });

  it('refuses a duplicate host name and non-admin registration', async () => {
    expect((await call('POST', '/hosts', { ...admin, body: { name: 'kvm-1' } })).status).toBe(409);
    expect((await call('POST', '/hosts', { token: ALICE, body: { name: 'kvm-9' } })).status).toBe(403);
  });

  it('upserts VMs by domain, keeps known ids and marks missing ones GONE', async () => {
    const first = await call('PUT', '/hosts/1/inventory', {
      ...admin,
      body: {
        vms: [domain('web-1', { backupConfig: { keep_last: '3', fs_freeze: 'suspend' } }), domain('db-1')],
      },
    });
    expect(first.status).toBe(200);
    expect(first.body.items.map((v: { id: number; domain: string }) => [v.id, v.domain])).toEqual([
      [1, 'web-1'],
      [2, 'db-1'],
    ]);
    expect(first.body.items[0].backups.BACKUP_CONFIG).toEqual({ KEEP_LAST: '3', FS_FREEZE: 'SUSPEND' });
    await vms.update(1, { 'backups.BACKUP_IDS': [7] });
    const second = await call('PUT', '/hosts/1/inventory', {
      ...admin,
      body: { vms: [domain('web-1', { state: 'POWEROFF' }), domain('mail-1')] },
    });
    const byDomain = Object.fromEntries(second.body.items.map((v: { domain: string }) => [v.domain, v]));
    expect(byDomain['web-1']).toMatchObject({ id: 1, state: 'POWEROFF', backups: { BACKUP_IDS: [7] } });
    expect(byDomain['db-1']).toMatchObject({ id: 2, state: 'GONE' });
    expect(byDomain['mail-1']).toMatchObject({ id: 3, state: 'RUNNING' });
    expect((await call('GET', '/hosts/1', admin)).body.state).toBe('MONITORED');
    await vms.update(1, { 'backups.BACKUP_IDS': [], state: 'RUNNING' });
  });

  it("keeps a locked VM's disks and template: mid-backup, libvirt shows them on overlays", async () => {
    const before = await vms.get(1);
    const onOverlay = {
      ...disk(0),
      source: '/var/lib/lifeboat/runner/work/17/overlay-vda.qcow2',
    };
    const report = (state: string) =>
      call('PUT', '/hosts/1/inventory', {
        ...admin,
        body: {
          vms: [
            domain('web-1', {
              state,
              disks: [onOverlay],
              template: '<domain><name>web-1</name><!--x--></domain>',
            }),

            domain('mail-1'),
          ],
        },
      });
    await vms.update(1, { lock: '17' });
    expect((await report('SUSPENDED')).status).toBe(200);
    expect(await vms.get(1)).toMatchObject({
      state: 'SUSPENDED',
      disks: before.disks,
      template: before.template,
    });
    await vms.update(1, {}, { remove: ['lock'] });
    expect((await report('RUNNING')).status).toBe(200);
    expect((await vms.get(1)).disks[0]?.source).toBe(onOverlay.source);
    await vms.update(1, { disks: before.disks, template: before.template });
  });

  it('refuses a bad BACKUP_CONFIG in the inventory and changes nothing', async () => {
    const bad = await call('PUT', '/hosts/1/inventory', {
      ...admin,
      body: { vms: [domain('web-1'), domain('new-1', { backupConfig: { FS_FREEZE: 'foo' } })] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe(
      'vms.1.backupConfig: FS_FREEZE must be one of NONE, AGENT, SUSPEND (got "foo")',
    );
    expect((await vms.list()).map((v) => v.domain).sort()).toEqual(['db-1', 'mail-1', 'web-1']);
  });

  it('refuses to delete a host that still has VMs', async () => {
    const res = await call('DELETE', '/hosts/1', admin);
    expect(res.status).toBe(409);
    expect(res.body.message).toContain('Host 1 still has 3 VM(s)');
  });

  it('refuses to register a host without the dead-letter queue ARN, creating nothing', async () => {
    const arn = process.env.HOST_DEAD_LETTER_QUEUE_ARN;
    delete process.env.HOST_DEAD_LETTER_QUEUE_ARN;
    try {
      const res = await call('POST', '/hosts', { ...admin, body: { name: 'kvm-nodlq' } });
      expect(res.status).toBe(500);
      expect(res.raw).not.toContain('HOST_DEAD_LETTER_QUEUE_ARN');
    } finally {
      process.env.HOST_DEAD_LETTER_QUEUE_ARN = arn;
    }
    expect((await call('GET', '/hosts', admin)).body.items.map((h: { name: string }) => h.name)).toEqual([
      'kvm-1',
    ]);
    const { QueueUrls } = await sqsClient().send(new ListQueuesCommand({}));
    expect(QueueUrls).toHaveLength(2);
  });

  it('deletes an empty host with its queue and keeps the shared dead-letter queue', async () => {
    const host = await call('POST', '/hosts', { ...admin, body: { name: 'kvm-gone' } });
    expect(host.status).toBe(201);
    expect(host.body.id).toBe(2);
    expect((await call('DELETE', `/hosts/${host.body.id}`, admin)).status).toBe(204);
    expect((await call('GET', `/hosts/${host.body.id}`, admin)).status).toBe(404);
    const { QueueUrls } = await sqsClient().send(new ListQueuesCommand({}));
    expect((QueueUrls ?? []).map((u) => u.split('/').pop()).sort()).toEqual([
      'lifeboat-dlq-hosts',
      'lifeboat-host-1',
    ]);
  });
  it("takes a runner's X25519 public key at registration, refusing anything else and creating nothing", async () => {
    const names = async () =>
      (await call('GET', '/hosts', admin)).body.items.map((h: { name: string }) => h.name);
    const before = await names();
    const notX25519 = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' });
    for (const [publicKey, message] of [
      ['not a key', 'publicKey: not a PEM public key'],
      [notX25519, 'publicKey: must be an X25519 key'],
    ]) {
      const res = await call('POST', '/hosts', { ...admin, body: { name: 'kvm-key', publicKey } });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'ValidationError', message });
    }
    expect(await names()).toEqual(before);
    const key = generateHostKeyPair();
    const host = await call('POST', '/hosts', {
      ...admin,
      body: { name: 'kvm-key', publicKey: key.publicKey },
    });
    expect(host.status).toBe(201);
    expect((await call('GET', `/hosts/${host.body.id}`, admin)).body.publicKey).toBe(key.publicKey);
    expect((await call('DELETE', `/hosts/${host.body.id}`, admin)).status).toBe(204);
  });
});

describe('VMs, BACKUP_CONFIG and backup requests', () => {
  it('names missing VMs', async () => {
    const res = await call('GET', '/vms/77', admin);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'NotFound', message: 'VM 77 does not exist' });
  });

  it('updates BACKUP_CONFIG with append semantics and refuses runtime keys', async () => {
    const set = await call('PUT', '/vms/1/backup-config', {
      ...admin,
      body: { pairs: { KEEP_LAST: 5, MODE: 'full' } },
    });
    expect(set.status).toBe(200);
    expect(set.body.config).toMatchObject({ KEEP_LAST: '5', MODE: 'FULL', FS_FREEZE: 'SUSPEND' });
    const append = await call('PUT', '/vms/1/backup-config', {
      ...admin,
      body: { pairs: { KEEP_LAST: 9, BACKUP_VOLATILE: 'yes' }, append: true },
    });
    expect(append.body.config).toMatchObject({ KEEP_LAST: '5', BACKUP_VOLATILE: 'YES' });
    const runtime = await call('PUT', '/vms/1/backup-config', {
      ...admin,
      body: { pairs: { LAST_BACKUP_ID: '1' } },
    });
    expect(runtime.status).toBe(400);
    expect(runtime.body.message).toContain('LAST_BACKUP_ID');
    const increment = await call('PUT', '/vms/1/backup-config', {
      ...admin,
      body: { pairs: { MODE: 'INCREMENT' } },
    });
    expect(increment.status).toBe(400);
    const shown = await call('GET', '/vms/1/backup-config', admin);
    expect(shown.body.effective).toMatchObject({ KEEP_LAST: '5', MODE: 'FULL', INCREMENT_MODE: 'CBT' });
  });

  it('queues a backup: 202 with a QUEUED execution and a pending request', async () => {
    const res = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      kind: 'backup',
      state: 'QUEUED',
      phase: 'queued',
      vmId: 1,
      hostId: 1,
      datastoreId: 1,
    });
    const request = await requests.get(res.body.id);
    expect(request).toMatchObject({ queue: 'pending', vmId: 1 });
    expect(request.input).toEqual({
      executionId: res.body.id,
      hostId: 1,
      vmId: 1,
      datastoreId: 1,
      reset: false,
    });
    expect((await call('GET', `/executions/${res.body.id}`, admin)).body.state).toBe('QUEUED');
    const again = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } });
    expect(again.status).toBe(409);
    expect(again.body.message).toBe(`VM 1 already has a backup queued (execution ${res.body.id})`);
  });

  it('refuses backups of locked, GONE or missing things with clear messages', async () => {
    await vms.update(3, { lock: '17' });
    const locked = await call('POST', '/vms/3/backup', { ...admin, body: { datastoreId: 1 } });
    expect(locked.status).toBe(409);
    expect(locked.body.message).toBe('VM 3 has a backup in progress (execution 17)');
    expect((await call('DELETE', '/vms/3', admin)).status).toBe(409);
    await vms.update(3, {}, { remove: ['lock'] });
    expect((await call('POST', '/vms/2/backup', { ...admin, body: { datastoreId: 1 } })).status).toBe(409);
    const noDs = await call('POST', '/vms/3/backup', { ...admin, body: { datastoreId: 42 } });
    expect(noDs.body).toEqual({ error: 'NotFound', message: 'Datastore 42 does not exist' });
    expect((await call('POST', '/vms/3/backup', { ...admin, body: {} })).body.message).toBe(
      'datastoreId: required',
    );
  });

  it('keeps other users out of VMs they do not own', async () => {
    expect((await call('GET', '/vms', { token: ALICE })).body.items).toEqual([]);
    expect((await call('GET', '/vms/1', { token: ALICE })).status).toBe(403);
  });
});

describe('images', () => {
  const image = (id: number, state: 'READY' | 'LOCKED') => ({
    owner: 'admin',
    group: 'admin',
    permissions: 'um-------',
    id,
    name: `1-${id}`,
    type: 'BACKUP' as const,
    vmId: 1,
    datastoreId: 1,
    state,
    mode: 'FULL' as const,
    source: 'snap',
    disks: [{ id: 0, size: 10, virtualSize: 1024, format: 'raw' }],
    createdAt: new Date().toISOString(),
  });

  it('lists, filters, restores and deletes images', async () => {
    await images.put(image(1, 'READY'));
    await images.put(image(2, 'LOCKED'));
    await vms.update(1, { 'backups.BACKUP_IDS': [1] });
    const listed = (await call('GET', '/images?vmId=1&type=backup', admin)).body.items;
    expect(listed).toHaveLength(2);
    // A READY image names each stored file; a LOCKED one has nothing to download yet.
    expect(listed[0].downloadUrls).toEqual([`restic://1/snap/disk.0`, 'restic://1/snap/vm.xml']);
    expect(listed[1].downloadUrls).toEqual([]);
    expect((await call('GET', '/images?datastoreId=5', admin)).body.items).toHaveLength(0);
    expect((await call('GET', '/images?vmId=x', admin)).status).toBe(400);

    expect((await call('DELETE', '/datastores/1', admin)).status).toBe(409);
    expect((await call('DELETE', '/images/2', admin)).status).toBe(409);
    expect((await call('POST', '/images/2/restore', { ...admin, body: {} })).status).toBe(409);
    expect((await call('POST', '/images/1/restore', { ...admin, body: { diskId: 4 } })).body.message).toBe(
      'diskId: disk 4 is not part of the backup (image 1 holds disk 0)',
    );
    const restore = await call('POST', '/images/1/restore', {
      ...admin,
      body: { name: 'web-restored', noIp: true },
    });
    expect(restore.status).toBe(202);
    expect(restore.body).toMatchObject({ kind: 'restore', state: 'QUEUED', imageId: 1, hostId: 1 });
    expect((await requests.get(restore.body.id)).input).toMatchObject({
      imageId: 1,
      options: { name: 'web-restored', noIp: true },
    });

    // With stored data: DELETING at once, out of BACKUP_IDS, and a delete execution queued.
    const deleted = await call('DELETE', '/images/1', admin);
    expect(deleted.status).toBe(202);
    expect(deleted.body).toMatchObject({ kind: 'delete', state: 'QUEUED', imageId: 1, hostId: 1 });
    expect((await requests.get(deleted.body.id)).input).toMatchObject({ kind: 'delete', backupId: 'snap' });
    expect((await vms.get(1)).backups.BACKUP_IDS).toEqual([]);
    expect((await call('GET', '/images/1', admin)).body.state).toBe('DELETING');
    expect((await call('DELETE', '/images/1', admin)).status).toBe(409);
    // No stored data (a failed backup): the record goes at once.
    await images.put({ ...image(3, 'READY'), state: 'ERROR', source: '' });
    expect((await call('DELETE', '/images/3', admin)).status).toBe(204);
    expect((await call('GET', '/images/3', admin)).status).toBe(404);
  });

  it('refuses a user a restore above priority 49 (admins up to 99), queueing nothing', async () => {
    await images.put({ ...image(7, 'READY'), owner: 'alice', group: 'users' });
    const before = (await call('GET', '/executions', admin)).body.items.length;
    const high = await call('POST', '/images/7/restore', {
      token: ALICE,
      body: { name: 'urgent', priority: 99 },
    });
    expect(high.status).toBe(403);
    expect(high.body).toEqual({ error: 'Forbidden', message: 'priority above 49 is for admins' });
    expect((await call('GET', '/executions', admin)).body.items).toHaveLength(before);
    const fine = await call('POST', '/images/7/restore', {
      token: ALICE,
      body: { name: 'normal', priority: 49 },
    });
    expect(fine.status, JSON.stringify(fine.body)).toBe(202);
  });

  it('lists executions newest first', async () => {
    const ids = (await call('GET', '/executions', admin)).body.items.map((e: { id: string }) => Number(e.id));
    expect(ids.length).toBeGreaterThanOrEqual(2);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect((await call('GET', '/config', admin)).body).toEqual({
      maxBackups: 5,
      maxBackupsHost: 2,
      heartbeatSeconds: 120,
      hostOfflineSeconds: 180,
    });
  });
});
