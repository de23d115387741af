/**
 * The daemon's state folder at start: the folder of the work folders is 0711 whoever made it, so
 * QEMU (libvirt-qemu) reaches the snapshot overlays of backups of running VMs below it. A restore
 * that ran first used to create it 0700 with its download folders, and every later backup of a
 * running VM on that host then failed with QEMU's "Permission denied" (found with two hosts, where
 * host B's first task was a restore).
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon } from '#runner/daemon.ts';
import { silentLogger } from '#runner/log.ts';
import { scratchRoot, workDirFor, workRoot } from '#runner/tasks/context.ts';
import { FakeTaskTokens, fakeDrivers, tempDir } from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('runner state folder', () => {
  it('makes the work folders’ parent 0711 at start, repairing one a restore left 0700, and empties the scratch folder', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const stateDir = join(temp.dir, 'state');
    // What a restore's download did on a host whose first task it was.
    await mkdir(join(workDirFor(stateDir, '7/RunOnHost'), 'files', '0'), { recursive: true, mode: 0o700 });
    expect(await mode(workRoot(stateDir))).toBe(0o700);
    // What a runner killed during a restic backup left in its scratch folder, made 0755 since.
    const left = join(scratchRoot(stateDir), 'lifeboat-restic-Ab12Cd');
    await mkdir(left, { recursive: true });
    await writeFile(join(left, 'password'), 'hunter2\n', { mode: 0o600 });
    await writeFile(join(scratchRoot(stateDir), 'stray'), '');

    const starting = new AbortController();
    const unreachable = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    const started = startDaemon(
      {
        home: temp.dir,
        enrollToken: 'lbe_test',
        hostName: 'hv-1',
        stateDir,
        libvirtUri: 'test:///default',
        pollWaitSeconds: 1,
        maxConcurrentTasks: 1,
        inventoryIntervalSeconds: 60,
        shutdownGraceSeconds: 1,
        restoreRoots: [join(temp.dir, 'restores')],
      },
      {
        api: () => ({ get: unreachable, post: unreachable, put: unreachable }),
        taskTokens: new FakeTaskTokens(),
        drivers: fakeDrivers(),
        secrets: async () => ({}),
        progress: async () => {},
        inventory: async () => [],
        log: silentLogger,
      },
      starting.signal,
    ).catch((e: unknown) => e);
    cleanups.push(async () => {
      starting.abort();
      await started;
    });
    const deadline = Date.now() + 10_000;
    const prepared = async () =>
      (await mode(workRoot(stateDir))) === 0o711 &&
      (await mode(scratchRoot(stateDir)).catch(() => 0)) === 0o700;
    while (!(await prepared()) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await mode(stateDir)).toBe(0o711);
    expect(await mode(workRoot(stateDir))).toBe(0o711);
    // The work folders stay (reconcile needs them); the scratch folder is empty and private.
    expect(await readdir(workRoot(stateDir))).toHaveLength(1);
    expect(await readdir(scratchRoot(stateDir))).toEqual([]);
    expect(await mode(scratchRoot(stateDir))).toBe(0o700);
  });
});
