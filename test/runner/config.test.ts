import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiAnswerError, type RunnerApi } from '#runner/api-client.ts';
import { loadRunnerConfig, resolveConnection } from '#runner/config.ts';
import { registerHost } from '#runner/register.ts';
import { tempDir } from './fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('runner config', () => {
  it('has the documented defaults', () => {
    const config = loadRunnerConfig({}, { LIFEBOAT_HOME: '/h' });
    expect(config).toMatchObject({
      home: '/h',
      stateDir: '/var/lib/lifeboat/runner',
      libvirtUri: 'qemu:///system',
      pollWaitSeconds: 20,
      maxConcurrentTasks: 2,
      inventoryIntervalSeconds: 60,
      shutdownGraceSeconds: 300,
      restoreRoots: ['/var/lib/lifeboat/restores'],
    });
    expect(config.hostName.length).toBeGreaterThan(0);
  });

  it('takes flags over environment variables', () => {
    const config = loadRunnerConfig(
      { name: 'kvm-2', maxTasks: '4' },
      { LIFEBOAT_RUNNER_NAME: 'kvm-1', LIFEBOAT_RUNNER_MAX_TASKS: '1', LIFEBOAT_RUNNER_POLL_WAIT: '5' },
    );
    expect([config.hostName, config.maxConcurrentTasks, config.pollWaitSeconds]).toEqual(['kvm-2', 4, 5]);
  });

  it('reads the restore roots from --restore-roots over LIFEBOAT_RESTORE_ROOTS, and refuses bad ones', () => {
    const env = { LIFEBOAT_RESTORE_ROOTS: '/srv/restores/:/data/vm-restores' };
    expect(loadRunnerConfig({}, env).restoreRoots).toEqual(['/srv/restores', '/data/vm-restores']);
    expect(loadRunnerConfig({ restoreRoots: '/x' }, env).restoreRoots).toEqual(['/x']);
    expect(() => loadRunnerConfig({ restoreRoots: 'relative' }, {})).toThrow(
      /runner setting restoreRoots.0: must be absolute paths/,
    );
    expect(() => loadRunnerConfig({ restoreRoots: '/a/../etc' }, {})).toThrow(/must not contain \.\./);
    expect(() => loadRunnerConfig({ restoreRoots: ':' }, {})).toThrow(
      /restoreRoots: must name at least one folder/,
    );
  });

  it('names a bad setting', () => {
    expect(() => loadRunnerConfig({ pollWait: '60' }, {})).toThrow(/runner setting pollWaitSeconds/);
    expect(() => loadRunnerConfig({ stateDir: 'relative' }, {})).toThrow(
      /stateDir: must be an absolute path/,
    );
    expect(() => loadRunnerConfig({ name: 'bad name!' }, {})).toThrow(/hostName/);
  });

  it('reads endpoint.json when no endpoint or token is given, and says where it looked otherwise', async () => {
    const { dir, remove } = await tempDir();
    cleanups.push(remove);
    const config = loadRunnerConfig({ home: dir }, {});
    expect(() => resolveConnection(config)).toThrow(new RegExp(`write ${join(dir, 'endpoint.json')}`));
    await writeFile(
      join(dir, 'endpoint.json'),
      JSON.stringify({ endpoint: 'http://127.0.0.1:7780/', token: 'tk' }),
    );
    expect(resolveConnection(config)).toEqual({ endpoint: 'http://127.0.0.1:7780', token: 'tk' });
    expect(resolveConnection({ ...config, token: 'flag-token' }).token).toBe('flag-token');
  });
});

describe('host registration', () => {
  function api(
    hosts: { id: number; name: string; queueUrl?: string }[],
    onPost?: () => never,
  ): RunnerApi & { posts: unknown[] } {
    const posts: unknown[] = [];
    return {
      posts,
      get: async <T>() => ({ items: hosts }) as T,
      post: async <T>(_path: string, body: unknown) => {
        posts.push(body);
        if (onPost) onPost();
        const host = { id: 7, name: (body as { name: string }).name, queueUrl: 'http://q/lifeboat-host-7' };
        hosts.push(host);
        return host as T;
      },
      put: async <T>() => ({}) as T,
    };
  }

  it('uses the existing host of its name', async () => {
    const fake = api([{ id: 2, name: 'kvm-1', queueUrl: 'http://q/lifeboat-host-2' }]);
    expect(await registerHost(fake, 'kvm-1')).toEqual({
      id: 2,
      name: 'kvm-1',
      queueUrl: 'http://q/lifeboat-host-2',
    });
    expect(fake.posts).toEqual([]);
  });

  it('registers itself when missing', async () => {
    const fake = api([]);
    expect((await registerHost(fake, 'kvm-9')).queueUrl).toBe('http://q/lifeboat-host-7');
    expect(fake.posts).toEqual([{ name: 'kvm-9' }]);
  });

  it('resolves a registration race (409) by reading the list again', async () => {
    const hosts = [] as { id: number; name: string; queueUrl?: string }[];
    const fake = api(hosts, () => {
      hosts.push({ id: 4, name: 'kvm-3', queueUrl: 'http://q/lifeboat-host-4' });
      throw new ApiAnswerError(409, 'Conflict', 'host name "kvm-3" is taken');
    });
    expect((await registerHost(fake, 'kvm-3')).id).toBe(4);
  });
});
