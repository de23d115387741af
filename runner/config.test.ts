import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRunnerConfig, resolveConnection } from '#runner/config.ts';
import { tempDir } from './testing/fakes.ts';

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

  it("takes local mode's session endpoint (loopback only), never with LIFEBOAT_API_AUTH=iam", () => {
    const env = { LIFEBOAT_HOME: '/h', LIFEBOAT_LOCAL_SESSION_URL: 'http://127.0.0.1:4100/' };
    expect(loadRunnerConfig({}, env).localSessionUrl).toBe('http://127.0.0.1:4100');
    expect(loadRunnerConfig({}, { LIFEBOAT_HOME: '/h' }).localSessionUrl).toBeUndefined();
    expect(() =>
      loadRunnerConfig({}, { ...env, LIFEBOAT_LOCAL_SESSION_URL: 'http://192.0.2.1:4100' }),
    ).toThrow(/LIFEBOAT_LOCAL_SESSION_URL: must be http:\/\/127\.0\.0\.1:PORT/);
    expect(() => loadRunnerConfig({}, { ...env, LIFEBOAT_API_AUTH: 'iam', LIFEBOAT_HOST_ID: '3' })).toThrow(
      /LIFEBOAT_API_AUTH=iam does not have/,
    );
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

  it('reads the pools restores may write into from --restore-pools over LIFEBOAT_RESTORE_POOLS (default none)', () => {
    expect(loadRunnerConfig({}, {}).restorePools).toBeUndefined();
    const env = { LIFEBOAT_RESTORE_POOLS: 'restored, vm-restores' };
    expect(loadRunnerConfig({}, env).restorePools).toEqual(['restored', 'vm-restores']);
    expect(loadRunnerConfig({ restorePools: 'x' }, env).restorePools).toEqual(['x']);
    expect(() => loadRunnerConfig({ restorePools: 'ok,-p x' }, {})).toThrow(
      /runner setting restorePools.1: must be a Ceph pool name/,
    );
  });

  it('names a bad setting', () => {
    expect(() => loadRunnerConfig({ pollWait: '60' }, {})).toThrow(/runner setting pollWaitSeconds/);
    expect(() => loadRunnerConfig({ stateDir: 'relative' }, {})).toThrow(
      /stateDir: must be an absolute path/,
    );
    expect(() => loadRunnerConfig({ name: 'bad name!' }, {})).toThrow(/hostName/);
  });

  it("reads endpoint.json's endpoint, never its token (the admin's), and says where it looked otherwise", async () => {
    const { dir, remove } = await tempDir();
    cleanups.push(remove);
    const config = loadRunnerConfig({ home: dir }, { LIFEBOAT_TOKEN: 'admin-token' });
    expect(() => resolveConnection(config)).toThrow(new RegExp(`write ${join(dir, 'endpoint.json')}`));
    await writeFile(
      join(dir, 'endpoint.json'),
      JSON.stringify({ endpoint: 'http://127.0.0.1:7780/', token: 'admin-token' }),
    );
    expect(resolveConnection(config)).toEqual({ endpoint: 'http://127.0.0.1:7780' });
    expect(JSON.stringify(config)).not.toContain('admin-token');
    expect(resolveConnection({ ...config, endpoint: 'http://api:1' })).toEqual({ endpoint: 'http://api:1' });
  });

  it('takes the enrollment token from the environment only, its file from the flag over the environment', () => {
    const config = loadRunnerConfig(
      { enrollTokenFile: '/flag/token' },
      { LIFEBOAT_ENROLL_TOKEN: 'lbe_env', LIFEBOAT_ENROLL_TOKEN_FILE: '/env/token' },
    );
    expect([config.enrollToken, config.enrollTokenFile]).toEqual(['lbe_env', '/flag/token']);
    expect(loadRunnerConfig({}, { LIFEBOAT_ENROLL_TOKEN_FILE: '/env/token' }).enrollTokenFile).toBe(
      '/env/token',
    );
  });
});
