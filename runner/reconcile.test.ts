import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DrillTask } from '#core/contracts/tasks.ts';
import { silentLogger } from '#runner/log.ts';
import { reconcileUnfinished } from '#runner/reconcile.ts';
import { hostKeyPath, sealedSecretResolver } from '#runner/sealed-secrets.ts';
import { workDirFor } from '#runner/tasks/context.ts';
import { backupTask, fakeDrivers, fakeRunner, sealedDatastore } from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('start-up reconcile', () => {
  it('cleans a crashed backup, tells its execution RunnerRestarted and marks it failed', async () => {
    const diskCalls: [string, string | undefined][] = [];
    const storeCalls: { vmId: number; password?: string }[] = [];
    const drivers = fakeDrivers(
      {
        reconcile: async (workDir, domain) => {
          diskCalls.push([workDir, domain]);
          return ['blockcommit web-1 vda'];
        },
      },
      {
        reconcile: async (target, ref) => {
          storeCalls.push({ vmId: ref.vmId, password: target.secrets.RESTIC_PASSWORD });
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    // The journalled task keeps its secrets sealed: reconcile opens them with the host key.
    const datastore = sealedDatastore({ RESTIC_PASSWORD: 'pw-1' });
    await r.journal.start(backupTask({ taskId: '21/RunOnHost', token: 'tok-21', datastore }));
    await r.journal.start(backupTask({ taskId: '22/RunOnHost', token: 'tok-22' }));
    await r.journal.done('22/RunOnHost', {});

    const done = await reconcileUnfinished({
      journal: r.journal,
      reporter: r.reporter,
      drivers,
      secrets: sealedSecretResolver(hostKeyPath(r.dir)),
      stateDir: r.dir,
      log: silentLogger,
    });

    expect(diskCalls).toEqual([[workDirFor(r.dir, '21/RunOnHost'), 'web-1']]);
    expect(storeCalls).toEqual([{ vmId: 3, password: 'pw-1' }]);
    expect(await readFile(r.journal.file, 'utf8')).not.toContain('pw-1');
    expect(r.tokens.answers()).toEqual([
      {
        call: 'failure',
        token: 'tok-21',
        error: 'RunnerRestarted',
        cause: 'the runner restarted while the task ran',
      },
    ]);
    expect(done.map((d) => d.taskId)).toEqual(['21/RunOnHost']);
    expect(r.journal.get('21/RunOnHost')?.state).toBe('failed');
    expect(r.journal.unfinished()).toEqual([]);
  });

  it('still marks the task failed when its execution is gone and the disk reconcile fails', async () => {
    const drivers = fakeDrivers({
      reconcile: async () => {
        throw new Error('libvirt is down');
      },
    });
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    await r.journal.start(backupTask({ taskId: '30/RunOnHost', token: 'old' }));
    r.tokens.gone.add('old');
    const [one] = await reconcileUnfinished({
      journal: r.journal,
      reporter: r.reporter,
      drivers,
      secrets: async () => ({}),
      stateDir: r.dir,
      log: silentLogger,
    });
    expect(one?.actions).toEqual([
      'disk reconcile failed: Error',
      'reconciled datastore 100',
      'reported RunnerRestarted (gone)',
    ]);
    // A redelivery after the restart is answered with that failure, never run.
    expect(r.journal.admit('30/RunOnHost')).toMatchObject({
      action: 'answer',
      outcome: { ok: false, error: { name: 'RunnerRestarted' } },
    });
  });

  it('a drill cut short: its throwaway domain is undefined and its scratch files removed', async () => {
    const drivers = fakeDrivers({}, { reconcile: async () => {} });
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    const task: DrillTask = {
      v: 1,
      kind: 'drill',
      taskId: '40/RunOnHost',
      token: 'tok-40',
      heartbeatSeconds: 120,
      drillId: 12,
      imageId: 9,
      vmId: 3,
      datastore: sealedDatastore({ RESTIC_PASSWORD: 'pw' }, { attributes: { BASE_PATH: '/srv/backup' } }),
      points: [{ backupId: 'b1', disks: [{ id: 0, file: 'disk.0.raw', sha256: null }] }],
      latestOnly: false,
      template: '<domain/>',
      emulatorCpus: null,
    };
    await r.journal.start(task);
    const scratch = join(workDirFor(r.dir, task.taskId), 'vm');
    await mkdir(scratch, { recursive: true });
    await writeFile(join(scratch, 'lifeboat-drill-12-disk-0.qcow2'), 'restored');
    const [one] = await reconcileUnfinished({
      journal: r.journal,
      reporter: r.reporter,
      drivers,
      secrets: sealedSecretResolver(hostKeyPath(r.dir)),
      stateDir: r.dir,
      log: silentLogger,
      // libvirt's in-process test driver: no daemon, no domain of this machine touched.
      libvirtUri: 'test:///default',
    });
    expect(one?.actions).toContain('removed drill domain lifeboat-drill-12');
    await expect(access(workDirFor(r.dir, task.taskId))).rejects.toThrow(/ENOENT/);
    expect(r.tokens.answers()).toEqual([
      expect.objectContaining({ token: 'tok-40', error: 'RunnerRestarted' }),
    ]);
  });
});
