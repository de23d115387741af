import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
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
});
