/**
 * What people watch, on DynamoDB Local with the steps driven as the state machines drive them:
 * the EMF metric lines a backup's end and a capacity sample print on stdout.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { dispatch } from '#functions/dispatcher/handler.ts';
import { recordCapacity } from '#functions/operations/capacity.ts';
import { requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { handler as markFailed } from '#functions/tasks/mark-failed.ts';
import { handler as release } from '#functions/tasks/release.ts';
import { call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-observability' };
const ARN = 'arn:aws:states:us-east-1:000000000000';
const NAMES = ['obs-ok', 'obs-failed'];

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

useControlPlane({
  name: 'observability',
  env: {
    BACKUP_STATE_MACHINE_ARN: `${ARN}:stateMachine:Backup`,
    RESTORE_STATE_MACHINE_ARN: `${ARN}:stateMachine:Restore`,
    MAINTENANCE_STATE_MACHINE_ARN: `${ARN}:stateMachine:Maintenance`,
    MONITOR_INTERVAL_MINUTES: '0',
  },
  sfn: true,
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw',
  inventory: NAMES.map(domain),
});

const vmIds = new Map<string, number>();
beforeAll(async () => {
  for (const vm of await vms.list()) vmIds.set(vm.domain, vm.id);
});

/** EMF documents (lines with `_aws`) printed on stdout while `run` runs. */
async function emfLines(run: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest) => {
    lines.push(String(chunk));
    return write(chunk as string, ...(rest as []));
  });
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
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
