/**
 * `POST /executions/{id}/cancel` on DynamoDB Local with the steps driven as the state machine
 * drives them and a fake Step Functions: a running backup is stopped (StopExecution on its ARN)
 * and ends ABORTED with everything it held given back (its slot, its VM's lock, its quota
 * reservation; its half-written image ERROR, never READY; an increment's chain READY again with
 * its points); a queued one ends before it ever starts, even when the dispatcher was starting it
 * at that very moment; an ended one is 409, an unknown one 404;
 * and only whoever may manage the VM (or an admin) may cancel.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuotaEntry } from '#core/quota.ts';
import { dispatch } from '#functions/dispatcher/handler.ts';
import { tableName } from '#functions/env.ts';
import { endOperation } from '#functions/operations/end.ts';
import { hostSlotName, readCounter } from '#functions/repo/counters.ts';
import { executions } from '#functions/repo/executions.ts';
import { images } from '#functions/repo/images.ts';
import { pendingRequests, requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as release } from '#functions/tasks/release.ts';
import { dynamo } from '#platform/aws.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { STATE_MACHINE_ENV, useControlPlane } from '../helpers/control-plane-fixture.ts';

const MiB = 1024 * 1024;
const TOKENS = {
  admin: 'lb_cancel-admin-0123456789abcdef',
  alice: 'lb_cancel-alice-0123456789abcdef',
  bob: 'lb_cancel-bob-0123456789abcdef00',
  carol: 'lb_cancel-carol-0123456789abcdef',
};
type Who = keyof typeof TOKENS;
const as = (who: Who, method: string, path: string, body?: unknown) =>
  call(method, path, { token: TOKENS[who], body });

const NAMES = [
  'c-running',
  'c-queued',
  'c-chain',
  'c-rights',
  'c-ended',
  'c-race',
  'c-start',
  'c-mid',
  'c-late',
  'c-fast',
];
const vmIds = new Map<string, number>();
const vm = (name: string) => vmIds.get(name) as number;

const plane = useControlPlane({
  name: 'cancel',
  env: {
    ...STATE_MACHINE_ENV,
    MAX_BACKUPS: '10',
    MAX_BACKUPS_HOST: '10',
  },
  sfn: true,
  admin: { token: TOKENS.admin, group: 'admin' },
  hosts: ['kvm-cancel'],
  resticPassword: 'pw-cancel',
  inventory: NAMES.map((name) => ({
    domain: name,
    state: 'RUNNING',
    disks: [
      {
        id: 0,
        target: 'vda',
        source: `/images/${name}.qcow2`,
        format: 'qcow2',
        size: 8 * MiB,
        canIncrement: true,
      },
    ],
    nics: [],
    template: '<domain/>',
  })),
});

beforeAll(async () => {
  for (const group of ['web', 'other'])
    expect((await as('admin', 'POST', '/groups', { name: group })).status).toBe(201);
  await seedUser('alice', TOKENS.alice, 'user', 'web');
  await seedUser('bob', TOKENS.bob, 'user', 'web');
  await seedUser('carol', TOKENS.carol, 'user', 'other');
  for (const v of await vms.list()) {
    vmIds.set(v.domain, v.id);
    // Alice's VMs: she may do anything, her group (bob) only use them, others nothing.
    await vms.update(v.id, { owner: 'alice', group: 'web', permissions: 'umau-----' });
  }
  // Alice may back up to the datastore (use for group and others).
  expect((await as('admin', 'PUT', '/datastores/1/permissions', { permissions: '744' })).status).toBe(200);
});

/** Queue a backup of `name` as admin (on alice's VM: charged to her) and start it. */
async function startBackup(name: string, body: Record<string, unknown> = {}) {
  const res = await as('admin', 'POST', `/vms/${vm(name)}/backup`, { datastoreId: 1, ...body });
  expect(res.status, res.raw).toBe(202);
  await dispatch();
  const input = (await requests.get(res.body.id)).input as Record<string, unknown> & { executionId: string };
  return { id: res.body.id as string, input };
}

/** The runner's answer to a backup task. */
const hostResult = (backupId: string, increment: { id: number; parent: number | null } | null) => ({
  backupId,
  disks: [
    {
      id: 0,
      size: MiB,
      virtualSize: 8 * MiB,
      format: increment?.parent ? 'qcow2' : 'raw',
      file: 'disk.0.raw',
    },
  ],
  increment,
  template: '<domain/>',
  durationMs: 1,
});

async function aliceUsed(): Promise<number | undefined> {
  const res = await as('admin', 'GET', '/users/alice/quota');
  expect(res.status, res.raw).toBe(200);
  return (res.body.entries as QuotaEntry[]).find((e) => String(e.datastore) === '1')?.size.used;
}

const slots = async (hostId: number) => [
  await readCounter('active'),
  await readCounter(hostSlotName(hostId)),
];

async function queuedGuard(vmId: number) {
  const out = await dynamo().send(
    new GetCommand({
      TableName: tableName('counters'),
      Key: { name: `queued:vm:${vmId}` },
      ConsistentRead: true,
    }),
  );
  return out.Item;
}

describe('POST /executions/{id}/cancel', () => {
  it('stops a running backup: ABORTED, its slot, lock and quota given back, its half image ERROR', async () => {
    const before = await aliceUsed();
    const { id, input } = await startBackup('c-running');
    const admitted = await admitBackup(input);
    const running = await executions.get(id);
    expect(running).toMatchObject({ state: 'RUNNING', phase: 'running' });
    expect(await slots(running.hostId as number)).toEqual([1, 1]);
    expect((await vms.get(vm('c-running'))).lock).toBe(id);
    expect(await aliceUsed()).toBeGreaterThan(before ?? 0);

    const res = await as('alice', 'POST', `/executions/${id}/cancel`);
    expect(res.status, res.raw).toBe(200);
    expect(res.body).toMatchObject({
      id,
      state: 'ABORTED',
      phase: 'cancelled',
      error: { name: 'Cancelled', message: 'cancelled by alice' },
    });
    expect(res.body.endedAt).toEqual(expect.any(String));
    expect(res.body.released).toBeUndefined();
    // Stopped in Step Functions, the way AWS stops one.
    expect(plane.sfn.stopped).toEqual([running.executionArn]);
    expect(plane.sfn.statuses.get(running.executionArn as string)).toBe('ABORTED');
    expect(await executions.get(id)).toMatchObject({ state: 'ABORTED', released: true });
    expect(await slots(running.hostId as number)).toEqual([0, 0]);
    expect((await vms.get(vm('c-running'))).lock).toBeUndefined();
    expect((await images.get(admitted.imageId)).state).toBe('ERROR');
    expect((await vms.get(vm('c-running'))).backups.BACKUP_IDS).toEqual([]);
    expect(await aliceUsed()).toBe(before);
    // The same VM backs up again at once.
    const next = await startBackup('c-running');
    await expect(admitBackup(next.input)).resolves.toMatchObject({ task: { kind: 'backup' } });
  });

  it('a Commit still running when the cancel ended the backup commits nothing: the image stays ERROR', async () => {
    const before = await aliceUsed();
    const { id, input } = await startBackup('c-late');
    const admitted = await admitBackup(input);
    expect((await as('alice', 'POST', `/executions/${id}/cancel`)).status).toBe(200);
    // The Lambda was already in Commit when StopExecution came: it runs to its end.
    await expect(
      commitBackup({ ...input, admit: admitted, host: hostResult('snap-late', null) }),
    ).rejects.toMatchObject({
      name: 'Conflict',
      message: `execution ${id} is ABORTED: backup snap-late is not committed`,
    });
    expect(await images.get(admitted.imageId)).toMatchObject({ state: 'ERROR', source: '' });
    expect((await vms.get(vm('c-late'))).backups.BACKUP_IDS).toEqual([]);
    expect((await vms.get(vm('c-late'))).lock).toBeUndefined();
    expect(await aliceUsed()).toBe(before);
  });

  it('ends a queued backup before it starts: nothing is stopped, the dispatcher starts nothing', async () => {
    const res = await as('admin', 'POST', `/vms/${vm('c-queued')}/backup`, { datastoreId: 1 });
    expect(res.status).toBe(202);
    expect(await queuedGuard(vm('c-queued'))).toBeDefined();
    const stops = plane.sfn.stopped.length;
    const cancelled = await as('alice', 'POST', `/executions/${res.body.id}/cancel`);
    expect(cancelled.status, cancelled.raw).toBe(200);
    expect(cancelled.body).toMatchObject({ state: 'ABORTED', phase: 'cancelled' });
    expect(cancelled.body.executionArn).toBeUndefined();
    expect(plane.sfn.stopped.length).toBe(stops);
    expect((await pendingRequests()).map((r) => r.id)).not.toContain(res.body.id);
    const starts = plane.sfn.calls.length;
    expect((await dispatch()).started).not.toContain(res.body.id);
    expect(plane.sfn.calls.length).toBe(starts);
    expect(await executions.get(res.body.id)).toMatchObject({ state: 'ABORTED', released: true });
    // Its "backup queued" guard is gone: the VM may be queued again.
    expect(await queuedGuard(vm('c-queued'))).toBeUndefined();
    expect((await as('admin', 'POST', `/vms/${vm('c-queued')}/backup`, { datastoreId: 1 })).status).toBe(202);
  });

  it('cancelling an increment leaves the chain READY with its earlier points, not the half increment', async () => {
    await as('admin', 'PUT', `/vms/${vm('c-chain')}/backup-config`, { pairs: { MODE: 'INCREMENT' } });
    const first = await startBackup('c-chain');
    const full = await admitBackup(first.input);
    await commitBackup({ ...first.input, admit: full, host: hostResult('snap-full', full.task.increment) });
    await release(first.input);
    const chain = await images.get(full.imageId);
    expect(chain).toMatchObject({ state: 'READY' });
    expect(chain.increments).toHaveLength(1);

    const second = await startBackup('c-chain');
    const increment = await admitBackup(second.input);
    expect(increment.imageId).toBe(full.imageId);
    expect((await images.get(full.imageId)).state).toBe('LOCKED');
    const res = await as('alice', 'POST', `/executions/${second.id}/cancel`);
    expect(res.status, res.raw).toBe(200);
    const after = await images.get(full.imageId);
    expect(after.state).toBe('READY');
    expect(after.increments).toEqual(chain.increments);
  });

  it('is for whoever may manage the VM: its group with use only, and others, are refused (nothing changes)', async () => {
    const { id } = await startBackup('c-rights');
    for (const who of ['bob', 'carol'] as const) {
      const refused = await as(who, 'POST', `/executions/${id}/cancel`);
      expect(refused.status, who).toBe(403);
      expect(refused.body).toEqual({
        error: 'Forbidden',
        message: `${who} may not manage VM ${vm('c-rights')}`,
      });
    }
    expect(await executions.get(id)).toMatchObject({ state: 'RUNNING' });
    expect((await as('admin', 'POST', `/executions/${id}/cancel`)).body.state).toBe('ABORTED');
  });

  it('lets its requester cancel what they started, whatever their right on the VM', async () => {
    const image = (await images.list()).find((i) => i.state === 'READY' && i.vmId === vm('c-chain'));
    expect(image).toBeDefined();
    // Carol may use the image (so restore it to a new VM) but has no right on its VM.
    await images.update(image?.id as number, { permissions: 'uma---u--' });
    const restore = await as('carol', 'POST', `/images/${image?.id}/restore`, { name: 'carol-copy' });
    expect(restore.status, restore.raw).toBe(202);
    expect(restore.body.vmId).toBe(vm('c-chain'));
    const bob = await as('bob', 'POST', `/executions/${restore.body.id}/cancel`);
    expect(bob.status).toBe(403);
    const cancelled = await as('carol', 'POST', `/executions/${restore.body.id}/cancel`);
    expect(cancelled.status, cancelled.raw).toBe(200);
    expect(cancelled.body).toMatchObject({
      kind: 'restore',
      state: 'ABORTED',
      error: { message: 'cancelled by carol' },
    });
  });

  it('answers 409 for an execution that already ended, 404 for an unknown one', async () => {
    const { id, input } = await startBackup('c-ended');
    const admitted = await admitBackup(input);
    await commitBackup({
      ...input,
      admit: admitted,
      host: hostResult('snap-ended', admitted.task.increment),
    });
    await release(input);
    const ended = await executions.get(id);
    expect(ended.state).toBe('SUCCEEDED');
    const stops = plane.sfn.stopped.length;
    const conflict = await as('alice', 'POST', `/executions/${id}/cancel`);
    expect(conflict.status).toBe(409);
    expect(conflict.body).toEqual({
      error: 'Conflict',
      message: `execution ${id} already ended SUCCEEDED at ${ended.endedAt}: nothing to cancel`,
    });
    expect(plane.sfn.stopped.length).toBe(stops);
    expect((await images.get(admitted.imageId)).state).toBe('READY');
    const unknown = await as('admin', 'POST', '/executions/999999/cancel');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: 'NotFound', message: 'Execution 999999 does not exist' });
    expect((await as('admin', 'POST', '/executions/abc/cancel')).status).toBe(400);
  });

  it('answers 409 when the state machine had ended by itself just before the stop', async () => {
    const { id } = await startBackup('c-race');
    const record = await executions.get(id);
    // Its last step ran in Step Functions, but its Release has not written the record yet.
    plane.sfn.statuses.set(record.executionArn as string, 'SUCCEEDED');
    const res = await as('alice', 'POST', `/executions/${id}/cancel`);
    expect(res.status).toBe(409);
    expect(res.body.message).toBe(`execution ${id} already ended SUCCEEDED: nothing to cancel`);
    expect(await executions.get(id)).toMatchObject({ state: 'RUNNING' });
    expect((await executions.get(id)).released).toBeUndefined();
  });

  it('a cancel landing while the dispatcher starts the request: stopped at once, the slot taken for it given back', async () => {
    await dispatch();
    const hostId = (await vms.get(vm('c-start'))).hostId;
    const before = await slots(hostId);
    const res = await as('admin', 'POST', `/vms/${vm('c-start')}/backup`, { datastoreId: 1 });
    expect(res.status).toBe(202);
    let cancelled: Awaited<ReturnType<typeof as>> | undefined;
    // The dispatcher read it QUEUED and took its slot; the cancel comes before its start is recorded.
    plane.sfn.beforeStart = async (name) => {
      if (name === res.body.id) cancelled = await as('alice', 'POST', `/executions/${name}/cancel`);
    };
    try {
      expect((await dispatch()).started).not.toContain(res.body.id);
    } finally {
      plane.sfn.beforeStart = undefined;
    }
    expect(cancelled?.status, cancelled?.raw).toBe(200);
    expect(cancelled?.body.state).toBe('ABORTED');
    const record = await executions.get(res.body.id);
    expect(record).toMatchObject({ state: 'ABORTED', phase: 'cancelled', released: true });
    // Its state machine was started, then stopped; the slot the dispatcher took is back.
    expect(plane.sfn.stopped).toContain(record.executionArn);
    expect(await slots(hostId)).toEqual(before);
    expect((await pendingRequests()).map((r) => r.id)).not.toContain(res.body.id);
    expect((await vms.get(vm('c-start'))).lock).toBeUndefined();
  });
  it('a backup that ran to its end before the dispatcher recorded its start stays SUCCEEDED, its image READY, its slot given back once', async () => {
    await dispatch();
    const hostId = (await vms.get(vm('c-fast'))).hostId;
    const before = await slots(hostId);
    const res = await as('admin', 'POST', `/vms/${vm('c-fast')}/backup`, { datastoreId: 1 });
    expect(res.status).toBe(202);
    let imageId: number | undefined;
    // A busy dispatcher: the whole state machine (Admit, the host step, Commit, Release) runs
    // between StartExecution and the dispatcher's record of the start.
    plane.sfn.beforeStart = async (name) => {
      if (name !== res.body.id) return;
      const input = (await requests.get(name)).input as Record<string, unknown> & { executionId: string };
      const admitted = await admitBackup(input);
      imageId = admitted.imageId;
      const host = hostResult('snap-fast', admitted.task.increment);
      const commit = await commitBackup({ ...input, admit: admitted, host });
      await release({ ...input, admit: admitted, host, commit });
    };
    try {
      expect((await dispatch()).started).toContain(res.body.id);
    } finally {
      plane.sfn.beforeStart = undefined;
    }
    const record = await executions.get(res.body.id);
    expect(record).toMatchObject({ state: 'SUCCEEDED', phase: 'done', released: true });
    expect(record.error).toBeUndefined();
    // Its start, recorded after its end, reads no later than that end.
    expect(record.startedAt).toBeDefined();
    expect((record.startedAt as string) <= (record.endedAt as string)).toBe(true);
    expect(plane.sfn.stopped).not.toContain(record.executionArn);
    expect((await images.get(imageId as number)).state).toBe('READY');
    expect(await slots(hostId)).toEqual(before);
    expect((await vms.get(vm('c-fast'))).lock).toBeUndefined();
  });

  it('a start landing between the cancel marking the request and ending it: stopped all the same, the slot given back', async () => {
    await dispatch();
    const hostId = (await vms.get(vm('c-mid'))).hostId;
    const before = await slots(hostId);
    const res = await as('admin', 'POST', `/vms/${vm('c-mid')}/backup`, { datastoreId: 1 });
    expect(res.status).toBe(202);
    const ending = {
      state: 'ABORTED' as const,
      endedAt: new Date().toISOString(),
      error: { name: 'Cancelled', message: 'cancelled by alice' },
    };
    // The cancel's first step (its conditional mark of the QUEUED request) lands before the start
    // is recorded; its ending (the released flag) only after the dispatcher has looked.
    plane.sfn.beforeStart = async (name) => {
      if (name === res.body.id)
        await executions.update(name, {
          state: 'ABORTED',
          phase: 'cancelled',
          endedAt: ending.endedAt,
          error: ending.error,
        });
    };
    try {
      expect((await dispatch()).started).not.toContain(res.body.id);
    } finally {
      plane.sfn.beforeStart = undefined;
    }
    await endOperation(await executions.get(res.body.id), ending, { heldSlot: false });
    const record = await executions.get(res.body.id);
    expect(record).toMatchObject({ state: 'ABORTED', phase: 'cancelled', released: true });
    expect(plane.sfn.stopped).toContain(record.executionArn);
    expect(await slots(hostId)).toEqual(before);
    expect((await vms.get(vm('c-mid'))).lock).toBeUndefined();
  });
});
