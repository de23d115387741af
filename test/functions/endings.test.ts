/**
 * Nothing stays stuck: every kind of execution (backup, restore in place, flatten, delete,
 * download), ended every way it can end (Commit then Release; MarkFailed then ReleaseFailed; a
 * Release after a MarkFailed that broke; stopped, timed out or killed with its stack before its
 * Admit, while on the host, and between its Commit and its Release, then found by the sweep;
 * a request that can never start), leaves no mark behind (the VM's lock, ACTIVE_FLATTEN, a
 * LOCKED image, a slot) and the next backup of the same VM is admitted. On DynamoDB Local,
 * with the steps driven as the state machines drive them and a fake Step Functions answering
 * the sweep's DescribeExecution.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { dispatch } from '#functions/dispatcher/handler.ts';
import { sweep } from '#functions/dispatcher/sweep.ts';
import { endOperation } from '#functions/operations/end.ts';
import { hostSlotName, readCounter } from '#functions/repo/counters.ts';
import { executions } from '#functions/repo/executions.ts';
import { images, listImages } from '#functions/repo/images.ts';
import { pendingRequests, requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as admitMaintenance } from '#functions/tasks/admit-maintenance.ts';
import { handler as admitRestore } from '#functions/tasks/admit-restore.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as commitMaintenance } from '#functions/tasks/commit-maintenance.ts';
import { handler as commitRestore } from '#functions/tasks/commit-restore.ts';
import { handler as markFailed } from '#functions/tasks/mark-failed.ts';
import { handler as release } from '#functions/tasks/release.ts';
import { call } from '../helpers/api-events.ts';
import { STATE_MACHINE_ENV, useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-endings' };
const ARN = 'arn:aws:states:us-east-1:000000000000';

const KINDS = ['backup', 'restore', 'flatten', 'delete', 'download'] as const;
type Kind = (typeof KINDS)[number];
const ENDINGS = [
  'success',
  'failure',
  'release after a broken MarkFailed',
  'aborted before Admit',
  'aborted on the host',
  'timed out on the host',
  'aborted between Commit and Release',
] as const;
type EndingName = (typeof ENDINGS)[number];

/** One VM per case, so each starts clean: `vm-<kind>-<ending index>`. */
const vmName = (kind: Kind, ending: number) => `vm-${kind}-${ending}`;
const vmIds = new Map<string, number>();

function domain(name: string) {
  const disk = { id: 0, target: 'vda', source: `/images/${name}.qcow2`, format: 'qcow2', size: 1000 };
  return {
    domain: name,
    // An in-place restore needs its VM POWEROFF (a backup takes RUNNING or POWEROFF).
    state: name.startsWith('vm-restore') ? 'POWEROFF' : 'RUNNING',
    disks: [{ ...disk, canIncrement: true }],
    nics: [],
    template: '<domain/>',
  };
}

/** The runner's answer to a backup task: `increment` is the task's chain point (or null). */
function backupResult(backupId: string, increment: { id: number; parent: number | null } | null) {
  const file = increment && increment.parent !== null ? `disk.0.inc${increment.id}.qcow2` : 'disk.0.raw';
  return {
    backupId,
    disks: [{ id: 0, size: 100, virtualSize: 1000, format: file.endsWith('.raw') ? 'raw' : 'qcow2', file }],
    increment,
    template: '<domain/>',
    durationMs: 1,
  };
}

/** The state input the dispatcher started the execution with. */
async function machineInput(executionId: string) {
  return (await requests.get(executionId)).input as Record<string, unknown> & { executionId: string };
}

/** Start what is queued, as the dispatcher does (StartExecution on the fake). */
async function dispatchAll(): Promise<void> {
  await dispatch();
  expect(await pendingRequests()).toEqual([]);
}

/** A backup of `vmId` queued by the API, started by the dispatcher, admitted and committed. */
async function fullBackup(vmId: number, backupId: string) {
  const res = await call('POST', `/vms/${vmId}/backup`, { ...admin, body: { datastoreId: 1 } });
  expect(res.status).toBe(202);
  await dispatchAll();
  const input = await machineInput(res.body.id);
  const admitted = await admitBackup(input);
  const host = backupResult(backupId, admitted.task.increment);
  const committed = await commitBackup({ ...input, admit: admitted, host });
  await release(input);
  return { executionId: res.body.id as string, imageId: admitted.imageId, committed };
}

/** How a case drives its operation: the state input, Admit, and Commit with the runner's answer. */
interface Operation {
  executionId: string;
  vmId: number;
  admit(): Promise<unknown>;
  commit(admitted: unknown): Promise<unknown>;
}

/** Queue the operation of `kind` on `vmId` (with what it needs first) and start it. */
async function startOperation(kind: Kind, vmId: number): Promise<Operation> {
  if (kind === 'backup') {
    const res = await call('POST', `/vms/${vmId}/backup`, { ...admin, body: { datastoreId: 1 } });
    expect(res.status).toBe(202);
    await dispatchAll();
    const input = await machineInput(res.body.id);
    return {
      executionId: res.body.id,
      vmId,
      admit: () => admitBackup(input),
      commit: (admitted) => {
        const { task } = admitted as Awaited<ReturnType<typeof admitBackup>>;
        return commitBackup({
          ...input,
          admit: admitted,
          host: backupResult(`b-${res.body.id}`, task.increment),
        });
      },
    };
  }
  if (kind === 'flatten') {
    // MODE=INCREMENT with KEEP_LAST=2: the third point of the chain queues a flatten.
    const config = await call('PUT', `/vms/${vmId}/backup-config`, {
      ...admin,
      body: { pairs: { MODE: 'INCREMENT', KEEP_LAST: '2' }, append: true },
    });
    expect(config.status).toBe(200);
    await fullBackup(vmId, `f-${vmId}-0`);
    await fullBackup(vmId, `f-${vmId}-1`);
    const third = await fullBackup(vmId, `f-${vmId}-2`);
    const flattenId = third.committed.flatten as string;
    expect(flattenId).toEqual(expect.any(String));
    expect((await vms.get(vmId)).backups.BACKUP_CONFIG.ACTIVE_FLATTEN).toBe('YES');
    await dispatchAll();
    const input = await machineInput(flattenId);
    return {
      executionId: flattenId,
      vmId,
      admit: () => admitMaintenance(input),
      commit: (admitted) =>
        commitMaintenance({
          ...input,
          admit: admitted,
          host: {
            backupId: `flat-${vmId}`,
            disks: [{ id: 0, file: 'disk.0.qcow2', size: 150, virtualSize: 1000 }],
          },
        }),
    };
  }
  const { imageId } = await fullBackup(vmId, `s-${vmId}`);
  let res: Awaited<ReturnType<typeof call>>;
  if (kind === 'restore') {
    res = await call('POST', `/images/${imageId}/restore`, {
      ...admin,
      body: { inPlace: true, confirmOverwrite: true },
    });
  } else if (kind === 'delete') {
    res = await call('DELETE', `/images/${imageId}`, admin);
  } else {
    res = await call('POST', '/downloads', {
      ...admin,
      body: { url: `restic://1/s-${vmId}/disk.0.raw`, toPath: `/tmp/out-${vmId}.raw` },
    });
  }
  expect(res.status).toBe(202);
  await dispatchAll();
  const input = await machineInput(res.body.id);
  const answers = {
    restore: {
      disks: [{ id: 0, path: `/images/vm.qcow2`, size: 100 }],
      templatePath: null,
      domain: 'vm',
      durationMs: 1,
    },
    delete: { removed: true },
    download: { path: `/tmp/out-${vmId}.raw`, size: 100 },
  };
  return {
    executionId: res.body.id,
    vmId,
    admit: () => (kind === 'restore' ? admitRestore(input) : admitMaintenance(input)),
    commit: (admitted) =>
      kind === 'restore'
        ? commitRestore({ ...input, admit: admitted, host: answers.restore })
        : commitMaintenance({ ...input, admit: admitted, host: answers[kind] }),
  };
}

/** The Step Functions status the sweep finds, by ending. */
function stopWith(executionId: string, kind: Kind, status: string): void {
  const machine = kind === 'backup' ? 'Backup' : kind === 'restore' ? 'Restore' : 'Maintenance';
  plane.sfn.statuses.set(`${ARN}:execution:${machine}:${executionId}`, status);
}

/** End the started operation the way `ending` says; answers the state it must end in. */
async function end(op: Operation, kind: Kind, ending: EndingName): Promise<string> {
  const input = await machineInput(op.executionId);
  const error = { Error: 'DatastoreUnreachable', Cause: 'ssh: connection refused' };
  switch (ending) {
    case 'success': {
      const admitted = await op.admit();
      await op.commit(admitted);
      await release(input);
      return 'SUCCEEDED';
    }
    case 'failure':
      await op.admit();
      await markFailed({ ...input, error });
      await release({ ...input, error, markFailed: {} });
      return 'FAILED';
    case 'release after a broken MarkFailed':
      // MarkFailed itself failed: the state machine goes on to ReleaseFailed with the error.
      await op.admit();
      await release({ ...input, error, markFailedError: { Error: 'Throttled' } });
      return 'FAILED';
    case 'aborted before Admit':
      stopWith(op.executionId, kind, 'ABORTED');
      expect(await sweep()).toContain(op.executionId);
      return 'ABORTED';
    case 'aborted on the host':
      await op.admit();
      stopWith(op.executionId, kind, 'ABORTED');
      expect(await sweep()).toContain(op.executionId);
      return 'ABORTED';
    case 'timed out on the host':
      await op.admit();
      stopWith(op.executionId, kind, 'TIMED_OUT');
      expect(await sweep()).toContain(op.executionId);
      return 'TIMED_OUT';
    case 'aborted between Commit and Release': {
      const admitted = await op.admit();
      await op.commit(admitted);
      stopWith(op.executionId, kind, 'ABORTED');
      expect(await sweep()).toContain(op.executionId);
      return 'ABORTED';
    }
  }
}

/** Every mark on the VM and its images is gone, and the slots are as before. */
async function expectNoMarks(vmId: number, slots: { active: number; host: number }): Promise<void> {
  const vm = await vms.get(vmId);
  expect(vm.lock).toBeUndefined();
  expect(vm.backups.BACKUP_CONFIG.ACTIVE_FLATTEN).toBeUndefined();
  const locked = (await listImages()).filter((i) => i.vmId === vmId && i.state === 'LOCKED');
  expect(locked).toEqual([]);
  expect(await readCounter('active')).toBe(slots.active);
  expect(await readCounter(hostSlotName(1))).toBe(slots.host);
}

/** The next backup of the VM is queued (202), started and admitted; then it is ended cleanly. */
async function expectNextBackupAdmitted(vmId: number): Promise<void> {
  const res = await call('POST', `/vms/${vmId}/backup`, { ...admin, body: { datastoreId: 1 } });
  expect(res.body).toMatchObject({ kind: 'backup', state: 'QUEUED' });
  expect(res.status).toBe(202);
  await dispatchAll();
  const input = await machineInput(res.body.id);
  const admitted = await admitBackup(input);
  expect((await vms.get(vmId)).lock).toBe(res.body.id);
  const host = backupResult(`next-${res.body.id}`, admitted.task.increment);
  await commitBackup({ ...input, admit: admitted, host });
  await release(input);
  // What that commit queued (KEEP_LAST's next flatten) is ended unstarted, its marks undone too.
  for (const pending of await pendingRequests()) {
    const ending = { state: 'ABORTED' as const, endedAt: new Date().toISOString() };
    await endOperation(await executions.get(pending.id), ending, { heldSlot: false });
    await requests.delete(pending.id);
  }
}

const names = [
  ...KINDS.flatMap((kind) => ENDINGS.map((_, i) => vmName(kind, i))),
  'vm-flatten-regression',
  'vm-orphan-flatten',
  'vm-gone-host',
];
const plane = useControlPlane({
  name: 'endings',
  env: {
    ...STATE_MACHINE_ENV,
    MAX_BACKUPS: '10',
    MAX_BACKUPS_HOST: '10',
  },
  sfn: true,
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw',
  inventory: names.map(domain),
});
beforeAll(async () => {
  for (const vm of await vms.list()) vmIds.set(vm.domain, vm.id);
});

describe('after an embedded stack restarted in the middle of a KEEP_LAST flatten', () => {
  it('the sweep ends the flatten ABORTED, clears ACTIVE_FLATTEN and unlocks the chain: the next backup is accepted', async () => {
    const vmId = vmIds.get('vm-flatten-regression') as number;
    const op = await startOperation('flatten', vmId);
    const flatten = await executions.get(op.executionId);
    await op.admit();
    // The stack restarted: Step Functions' execution is gone; the sweep finds it ABORTED.
    stopWith(op.executionId, 'flatten', 'ABORTED');
    expect(await sweep()).toEqual([op.executionId]);
    expect(await executions.get(op.executionId)).toMatchObject({ state: 'ABORTED', released: true });
    expect((await vms.get(vmId)).backups.BACKUP_CONFIG.ACTIVE_FLATTEN).toBeUndefined();
    expect((await images.get(flatten.imageId as number)).state).toBe('READY');
    const res = await call('POST', `/vms/${vmId}/backup`, { ...admin, body: { datastoreId: 1 } });
    expect(res.body.message).toBeUndefined();
    expect(res.status).toBe(202);
    await dispatchAll();
    await expect(admitBackup(await machineInput(res.body.id))).resolves.toMatchObject({
      imageId: flatten.imageId,
    });
  });
});

describe.each(KINDS)('a %s execution', (kind) => {
  it.each(ENDINGS.map((ending, i) => [ending, i] as const))(
    'ended by %s leaves no mark, and the next backup of its VM is admitted',
    async (ending, i) => {
      const vmId = vmIds.get(vmName(kind, i)) as number;
      const slots = { active: await readCounter('active'), host: await readCounter(hostSlotName(1)) };
      const op = await startOperation(kind, vmId);
      const state = await end(op, kind, ending);
      const record = await executions.get(op.executionId);
      expect(record).toMatchObject({ state, released: true, endedAt: expect.any(String) });
      if (state !== 'SUCCEEDED') expect(record.error?.name).toEqual(expect.any(String));
      await expectNoMarks(vmId, slots);
      // A swept execution is swept once.
      expect(await sweep()).not.toContain(op.executionId);
      if (kind === 'delete' && state !== 'SUCCEEDED' && ending !== 'aborted between Commit and Release') {
        // The data may still be there: the image is ERROR, and can be deleted again.
        const image = record.imageId as number;
        expect((await images.get(image)).state).toBe('ERROR');
      }
      await expectNextBackupAdmitted(vmId);
      await expectNoMarks(vmId, slots);
    },
  );
});

describe('marks left by an ending cut short', () => {
  it('a backup whose Commit set ACTIVE_FLATTEN and died before queueing the flatten: the sweep clears it', async () => {
    const vmId = vmIds.get('vm-orphan-flatten') as number;
    const op = await startOperation('backup', vmId);
    await op.admit();
    // What the Commit's one VM write did (unlock and ACTIVE_FLATTEN) before the stack died.
    await executions.update(op.executionId, { phase: 'committing' });
    await vms.update(vmId, { 'backups.BACKUP_CONFIG.ACTIVE_FLATTEN': 'YES' }, { remove: ['lock'] });
    stopWith(op.executionId, 'backup', 'ABORTED');
    expect(await sweep()).toEqual([op.executionId]);
    expect((await vms.get(vmId)).backups.BACKUP_CONFIG.ACTIVE_FLATTEN).toBeUndefined();
    await expectNextBackupAdmitted(vmId);
  });

  it('a queued flatten whose host is gone: the dispatcher fails it and undoes its marks', async () => {
    const vmId = vmIds.get('vm-gone-host') as number;
    await call('PUT', `/vms/${vmId}/backup-config`, {
      ...admin,
      body: { pairs: { MODE: 'INCREMENT', KEEP_LAST: '2' }, append: true },
    });
    await fullBackup(vmId, 'g-0');
    await fullBackup(vmId, 'g-1');
    const flattenId = (await fullBackup(vmId, 'g-2')).committed.flatten as string;
    // The request names a host that no longer exists (the dispatcher can never start it).
    await requests.update(flattenId, { hostId: 99 });
    const report = await dispatch();
    expect(report.failed).toEqual([flattenId]);
    expect(await executions.get(flattenId)).toMatchObject({
      state: 'FAILED',
      released: true,
      error: { name: 'NotFound', message: 'Host 99 does not exist' },
    });
    await expectNoMarks(vmId, {
      active: await readCounter('active'),
      host: await readCounter(hostSlotName(1)),
    });
    await expectNextBackupAdmitted(vmId);
  });
});
