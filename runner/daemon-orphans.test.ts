/**
 * The daemon's wiring of the process registry: at start it stops what the previous run left
 * (before it even reaches the API), and from then on records every tool drivers/exec.ts starts
 * in this process, until it stops.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ProcessGroupHooks, run } from '#drivers/exec.ts';
import { startDaemon } from '#runner/daemon.ts';
import { silentLogger } from '#runner/log.ts';
import { PROCESS_GROUPS_FILE, ProcessRegistry } from '#runner/process-registry.ts';
import { FakeTaskTokens, fakeDrivers, tempDir, until } from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** `sleep 300` through exec, stopped after the test whatever happens. */
function start(processGroups?: ProcessGroupHooks) {
  const abort = new AbortController();
  const ended = run({ file: 'sleep', args: ['300'] }, { signal: abort.signal, processGroups }).catch(
    (e: unknown) => e,
  );
  cleanups.push(async () => {
    abort.abort();
    await ended;
  });
  return { ended, abort: () => abort.abort() };
}

function listed(file: string): string[][] {
  return JSON.parse(readFileSync(file, 'utf8')).groups.map((g: { cmdline: string[] }) => g.cmdline);
}

describe('runner daemon and leftover tools', () => {
  it('stops the previous run’s tools at start and records its own until it stops', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const stateDir = join(temp.dir, 'state');
    const file = join(stateDir, PROCESS_GROUPS_FILE);

    // The previous runner: a tool recorded, then the runner gone (the hooks never hear its end).
    await run({ file: 'mkdir', args: ['-p', stateDir] });
    const previous = ProcessRegistry.open(file, silentLogger);
    const leftover = start({ onSpawn: previous.hooks.onSpawn, onExit: () => {} });
    const pid = previous.running()[0]?.pgid ?? 0;
    expect(running(pid)).toBe(true);

    // The API stays unreachable, so the daemon sits in registration until aborted.
    const starting = new AbortController();
    const unreachable = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    const started = startDaemon(
      {
        home: temp.dir,
        // An enrollment token at hand: the daemon retries registering until the API answers.
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

    await until(() => !running(pid), 10_000);
    expect(await leftover.ended).toMatchObject({ signal: 'SIGTERM' });
    // Settled once stopped: the next start has nothing more to do.
    await until(() => listed(file).length === 0);

    // While the daemon lives, any tool this process starts is on file while it runs.
    const mine = start();
    expect(listed(file)).toEqual([['sleep', '300']]);
    mine.abort();
    await mine.ended;
    expect(listed(file)).toEqual([]);

    // A start given up on stops recording.
    starting.abort();
    expect(await started).toBeInstanceOf(Error);
    const unrecorded = start();
    expect(listed(file)).toEqual([]);
    unrecorded.abort();
    await unrecorded.ended;
  });
});
