/**
 * The daemon's wiring of libvirt's domain events: a burst of events is one inventory report,
 * made at once (the minute's loop is set to an hour here), with what libvirt shows after the
 * burst; the event follower gets the runner's URI and is stopped with the daemon.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InventoryVm } from '#core/contracts/api.ts';
import type { RunnerApi } from '#runner/api-client.ts';
import { startDaemon } from '#runner/daemon.ts';
import type { FollowOptions } from '#runner/domain-events.ts';
import { silentLogger } from '#runner/log.ts';
import { FakeQueue, FakeTaskTokens, fakeDrivers, tempDir } from './fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('runner daemon and libvirt events', () => {
  it('reports the inventory once per burst of events, at once, and stops following them at stop', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    await mkdir(join(temp.dir, 'state'), { recursive: true });
    const puts: { at: number; vms: InventoryVm[] }[] = [];
    const host = {
      id: 7,
      name: 'kvm-7',
      state: 'INIT',
      queueUrl: 'http://q/lifeboat-host-7',
      createdAt: 'now',
    };
    const api: RunnerApi = {
      get: async <T>() => host as T,
      post: async <T>() => host as T,
      put: async <T>(path: string, body: unknown) => {
        if (path.endsWith('/inventory'))
          puts.push({ at: Date.now(), vms: (body as { vms: InventoryVm[] }).vms });
        return host as T;
      },
    };
    let state: InventoryVm['state'] = 'SUSPENDED';
    let follow: FollowOptions | undefined;
    let followEnded = false;
    const daemon = await startDaemon(
      {
        home: temp.dir,
        hostName: 'hv-1',
        stateDir: join(temp.dir, 'state'),
        libvirtUri: 'qemu+ssh://elsewhere/system',
        pollWaitSeconds: 1,
        maxConcurrentTasks: 1,
        inventoryIntervalSeconds: 3600,
        shutdownGraceSeconds: 1,
        restoreRoots: [join(temp.dir, 'restores')],
        apiAuth: 'iam',
        hostId: 7,
      },
      {
        signedApi: api,
        taskTokens: new FakeTaskTokens(),
        drivers: fakeDrivers(),
        secrets: async () => ({}),
        progress: async () => {},
        inventory: async () => [{ domain: 'vm-1', state, disks: [], nics: [], template: '<domain/>' }],
        log: silentLogger,
        queue: () => new FakeQueue(),
        domainEvents: async (options) => {
          follow = options;
          await new Promise((resolve) => options.signal.addEventListener('abort', resolve));
          followEnded = true;
        },
      },
    );
    await vi.waitUntil(() => puts.length === 1 && follow !== undefined);
    expect(follow?.uri).toBe('qemu+ssh://elsewhere/system');
    expect(puts[0]?.vms[0]?.state).toBe('SUSPENDED');

    // A domain starting: "resumed" and "started" within milliseconds, then a quiet libvirt.
    const at = Date.now();
    state = 'RUNNING';
    follow?.onChange({ kind: 'lifecycle', domain: 'vm-1' });
    follow?.onChange({ kind: 'lifecycle', domain: 'vm-1' });
    follow?.onChange({ kind: 'lifecycle', domain: 'vm-1' });
    await vi.waitUntil(() => puts.length === 2, { timeout: 2000 });
    expect((puts[1]?.at ?? 0) - at).toBeLessThan(1000);
    expect(puts[1]?.vms[0]?.state).toBe('RUNNING');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(puts).toHaveLength(2);

    // A restarted event stream (events may have been missed) reports as well.
    follow?.onResumed?.();
    await vi.waitUntil(() => puts.length === 3, { timeout: 2000 });

    await daemon.stop();
    expect(followEnded).toBe(true);
    follow?.onChange({ kind: 'lifecycle', domain: 'vm-1' });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(puts).toHaveLength(3);
  });
});
