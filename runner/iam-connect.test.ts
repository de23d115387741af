/**
 * A runner in AWS (`LIFEBOAT_API_AUTH=iam`), against a fake API: it needs no enrollment token nor
 * saved credential, registers its public key on host `LIFEBOAT_HOST_ID` through the `/runner`
 * routes (keeping host-key.pem), works from the host it is answered, and reports its inventory
 * there; a host nobody created is a clear, final error.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { ApiAnswerError, type RunnerApi } from '#runner/api-client.ts';
import { loadRunnerConfig } from '#runner/config.ts';
import { startDaemon } from '#runner/daemon.ts';
import { NotEnrolled } from '#runner/errors.ts';
import { hostKeyPath, identityPath } from '#runner/identity.ts';
import { silentLogger } from '#runner/log.ts';
import { connectHostSigned, reportInventory } from '#runner/register.ts';
import { FakeQueue, FakeTaskTokens, fakeDrivers, tempDir } from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function stateDir(): Promise<string> {
  const temp = await tempDir();
  cleanups.push(temp.remove);
  return temp.dir;
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

/** A fake of the signed API: host 7 exists (created by an admin); any other id answers 404. */
function fakeSignedApi() {
  const calls: Call[] = [];
  const host = {
    id: 7,
    name: 'kvm-7',
    state: 'INIT',
    queueUrl: 'http://q/lifeboat-host-7',
    createdAt: 'now',
  };
  const route = (method: string, path: string, body?: unknown) => {
    calls.push({ method, path, ...(body !== undefined ? { body } : {}) });
    if (!path.startsWith('/runner/hosts/7')) throw new ApiAnswerError(404, 'NotFound', 'Host does not exist');
    return host;
  };
  const api: RunnerApi = {
    get: async <T>(path: string) => route('GET', path) as T,
    post: async <T>(path: string, body: unknown) => route('POST', path, body) as T,
    put: async <T>(path: string, body: unknown) => route('PUT', path, body) as T,
  };
  return { api, calls };
}

const options = (dir: string, hostId = 7) => ({
  hostId,
  stateDir: dir,
  runnerVersion: '1.2.3',
  log: silentLogger,
});

const publicOf = async (dir: string) =>
  createPublicKey(createPrivateKey(await readFile(hostKeyPath(dir), 'utf8')))
    .export({ type: 'spki', format: 'pem' })
    .toString();

describe('connectHostSigned', () => {
  it('registers its new public key on its host through /runner, and works from the host answered', async () => {
    const dir = await stateDir();
    const { api, calls } = fakeSignedApi();
    const connection = await connectHostSigned(api, options(dir));
    expect(calls).toEqual([
      {
        method: 'PUT',
        path: '/runner/hosts/7/key',
        body: { publicKey: await publicOf(dir), runnerVersion: '1.2.3' },
      },
    ]);
    expect(connection.host).toEqual({ id: 7, name: 'kvm-7', queueUrl: 'http://q/lifeboat-host-7' });
    expect(connection.hostPath).toBe('/runner/hosts/7');
    expect((await stat(hostKeyPath(dir))).mode & 0o777).toBe(0o600);
    // No bearer identity is made.
    await expect(stat(identityPath(dir))).rejects.toMatchObject({ code: 'ENOENT' });

    await reportInventory(connection.api, connection.hostPath, async () => [], '1.2.3');
    expect(calls.at(-1)).toEqual({
      method: 'PUT',
      path: '/runner/hosts/7/inventory',
      body: { vms: [], runnerVersion: '1.2.3' },
    });
  });

  it('keeps an existing host-key.pem: the key its sealed secrets are meant for', async () => {
    const dir = await stateDir();
    const pair = generateHostKeyPair();
    await writeFile(hostKeyPath(dir), pair.privateKey, { mode: 0o600 });
    const { api, calls } = fakeSignedApi();
    await connectHostSigned(api, options(dir));
    expect(calls[0]?.body).toMatchObject({ publicKey: pair.publicKey });
  });

  it('a host nobody created is NotEnrolled, saying what to do', async () => {
    const dir = await stateDir();
    const { api } = fakeSignedApi();
    const error = await connectHostSigned(api, options(dir, 8)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotEnrolled);
    expect((error as Error).message).toMatch(/host 8 does not exist: an admin creates it \(POST \/hosts/);
  });
});

describe('LIFEBOAT_API_AUTH', () => {
  const env = { LIFEBOAT_RUNNER_STATE_DIR: '/var/lib/lifeboat/runner', LIFEBOAT_RUNNER_NAME: 'hv-1' };

  it('is bearer by default, iam with the host id of LIFEBOAT_HOST_ID', () => {
    expect(loadRunnerConfig({}, env).apiAuth).toBeUndefined();
    expect(loadRunnerConfig({}, { ...env, LIFEBOAT_API_AUTH: 'iam', LIFEBOAT_HOST_ID: '7' })).toMatchObject({
      apiAuth: 'iam',
      hostId: 7,
    });
  });

  it('refuses iam without a host id, and any other value', () => {
    expect(() => loadRunnerConfig({}, { ...env, LIFEBOAT_API_AUTH: 'iam' })).toThrow(/LIFEBOAT_HOST_ID/);
    expect(() => loadRunnerConfig({}, { ...env, LIFEBOAT_API_AUTH: 'token' })).toThrow(
      /runner setting apiAuth/,
    );
    expect(() => loadRunnerConfig({}, { ...env, LIFEBOAT_API_AUTH: 'iam', LIFEBOAT_HOST_ID: '-1' })).toThrow(
      /runner setting hostId/,
    );
  });
});

describe('the daemon with LIFEBOAT_API_AUTH=iam', () => {
  it('starts with no enrollment token, registers its key and reports its inventory on /runner', async () => {
    const dir = await stateDir();
    await mkdir(join(dir, 'state'), { recursive: true });
    const { api, calls } = fakeSignedApi();
    const daemon = await startDaemon(
      {
        home: dir,
        hostName: 'hv-1',
        stateDir: join(dir, 'state'),
        libvirtUri: 'test:///default',
        pollWaitSeconds: 1,
        maxConcurrentTasks: 1,
        inventoryIntervalSeconds: 60,
        shutdownGraceSeconds: 1,
        restoreRoots: [join(dir, 'restores')],
        apiAuth: 'iam',
        hostId: 7,
      },
      {
        signedApi: api,
        api: () => {
          throw new Error('no bearer client in iam mode');
        },
        taskTokens: new FakeTaskTokens(),
        drivers: fakeDrivers(),
        secrets: async () => ({}),
        progress: async () => {},
        inventory: async () => [],
        log: silentLogger,
        queue: () => new FakeQueue(),
      },
    );
    await daemon.inventoryNow();
    await daemon.stop();
    expect(daemon.host.id).toBe(7);
    expect(calls[0]).toMatchObject({ method: 'PUT', path: '/runner/hosts/7/key' });
    expect(calls.filter((c) => c.path === '/runner/hosts/7/inventory').length).toBeGreaterThanOrEqual(1);
    expect(calls.every((c) => c.path.startsWith('/runner/hosts/7'))).toBe(true);
  });
});
