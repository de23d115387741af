/**
 * The runner re-validates every datastore attribute a task hands it, with the API's rules,
 * before any driver (ssh, sftp, rsync, restic) is called: a forged or corrupted task message
 * fails with a clear ValidationError and no process runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BackupTask, Task } from '#core/contracts/tasks.ts';
import type { DatastoreDriver } from '#drivers/datastore/driver.ts';
import {
  backupTask,
  type FakeDisk,
  fakeDrivers,
  fakeRunner,
  sealedDatastore,
  until,
} from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Drivers whose every call is recorded (and would have run a process). */
function recordingDrivers(calls: string[]) {
  const record =
    (name: string) =>
    async (..._args: unknown[]): Promise<never> => {
      calls.push(name);
      throw new Error(`${name} must not be called`);
    };
  const store: Partial<DatastoreDriver> = {};
  for (const m of ['backup', 'restore', 'download', 'monitor', 'rm', 'stat', 'verify', 'reconcile'] as const)
    (store as Record<string, unknown>)[m] = record(`datastore.${m}`);
  const disk: FakeDisk = {
    prepareBackup: record('disk.prepareBackup'),
    restoreDisk: record('disk.restoreDisk'),
    restoreChain: record('disk.restoreChain'),
  };
  return fakeDrivers(disk, store);
}

const header = (n: number) => ({
  v: 1 as const,
  taskId: `${n}/RunOnHost`,
  token: `t-${n}`,
  heartbeatSeconds: 120,
});
const ref = { vmId: 3, backupId: 'snap-1' };

function tasks(datastore: BackupTask['datastore']): Task[] {
  return [
    { ...backupTask({ datastore }), ...header(1) },
    { ...header(2), kind: 'monitor', datastore },
    { ...header(3), kind: 'rm', ...ref, datastore },
    { ...header(4), kind: 'stat', ...ref, datastore },
    { ...header(5), kind: 'verify', ...ref, datastore },
    {
      ...header(6),
      kind: 'download',
      ...ref,
      datastore,
      file: 'disk.0.raw',
      toPath: '/tmp/lb-never/disk.0.raw',
    },
    {
      ...header(7),
      kind: 'flatten',
      vmId: 3,
      imageId: 9,
      datastore,
      points: [
        { backupId: 'a', disks: [{ id: 0, file: 'disk.0.raw' }] },
        { backupId: 'b', disks: [{ id: 0, file: 'disk.0.inc1.qcow2' }] },
      ],
      template: '<domain/>',
    },
    {
      ...header(8),
      kind: 'restore',
      imageId: 9,
      ...ref,
      disks: [{ id: 0, file: 'disk.0.raw' }],
      datastore,
      target: '/tmp/lb-never-restore',
      name: 'copy',
      template: null,
      increment: null,
      chain: [],
    },
    {
      ...header(10),
      kind: 'drill',
      drillId: 4,
      imageId: 9,
      vmId: 3,
      datastore,
      points: [{ backupId: 'snap-1', disks: [{ id: 0, file: 'disk.0.raw', sha256: null }] }],
      latestOnly: false,
      template: '<domain/>',
      emulatorCpus: null,
    },
  ] as Task[];
}

describe('datastore attributes re-validated by the runner', () => {
  const hostile = [
    {
      driver: 'rsync',
      attributes: { RSYNC_HOST: 'bk', BASE_PATH: '/srv/b\n-oProxyCommand=touch /tmp/pwned' },
    },
    { driver: 'rsync', attributes: { RSYNC_HOST: 'bk', BASE_PATH: '-oProxyCommand=sh' } },
    { driver: 'restic', attributes: { BASE_PATH: '/srv/../../root/.ssh' } },
    { driver: 'restic', attributes: { BASE_PATH: '/srv/b', RESTIC_SFTP_SERVER: '-oProxyCommand=sh' } },
    { driver: 'rsync', attributes: { RSYNC_HOST: 'bk', RSYNC_ARGS: '-aS --rsh=sh' } },
  ] as const;

  it.each(hostile)('$attributes is refused by every task kind before any driver call', async (bad) => {
    const calls: string[] = [];
    const r = await fakeRunner({
      drivers: recordingDrivers(calls),
    });
    cleanups.push(r.remove);
    const datastore = sealedDatastore(
      { RESTIC_PASSWORD: 'pw' },
      { driver: bad.driver, attributes: { ...bad.attributes } },
    );
    const all = tasks(datastore as never);
    for (const task of all) await r.executor.accept(task);
    await until(() => r.tokens.answers().length === all.length, 10_000);
    for (const answer of r.tokens.answers()) {
      expect(answer).toMatchObject({
        call: 'failure',
        error: 'ValidationError',
        cause: expect.stringMatching(/^datastore 100: attributes\.[A-Z_]+: /),
      });
    }
    expect(calls).toEqual([]);
  });

  it('cleanup still cleans the host and skips the datastore it cannot trust', async () => {
    const calls: string[] = [];
    const r = await fakeRunner({ drivers: recordingDrivers(calls) });
    cleanups.push(r.remove);
    await r.executor.accept({
      ...header(9),
      kind: 'cleanup',
      failedTaskId: '1/RunOnHost',
      vm: { id: 3, domain: 'web-1', state: 'RUNNING' },
      imageId: 9,
      datastore: {
        id: 100,
        driver: 'rsync',
        attributes: { RSYNC_HOST: 'bk', BASE_PATH: '-x' },
        sealedSecrets: null,
      },
    });
    await until(() => r.tokens.answers().length === 1);
    expect(calls).toEqual([]);
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'success' });
  });
});
