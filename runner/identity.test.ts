/**
 * The runner's identity as its host, against a fake API: registering with an enrollment token
 * (key pair and credential saved 0600), reusing the saved credential, registering again when it
 * is refused, and a clear error when it has neither identity nor token.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { ApiAnswerError, type ApiConnector } from '#runner/api-client.ts';
import { startDaemon } from '#runner/daemon.ts';
import { NotEnrolled } from '#runner/errors.ts';
import { enrollmentToken, hostKeyPath, identityPath, saveIdentity } from '#runner/identity.ts';
import { silentLogger } from '#runner/log.ts';
import { runRunner } from '#runner/main.ts';
import { connectHost } from '#runner/register.ts';
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
  bearer: string;
  method: string;
  path: string;
  body?: unknown;
}

/**
 * A fake API: host 7 `kvm-1`; `credentials` are the bearer tokens GET /hosts/7 accepts (401
 * otherwise); registration issues `lbh_<n>` to the enrollment tokens in `enrollments`, once.
 */
function fakeApi(opts: { credentials?: string[]; enrollments?: string[] } = {}) {
  const calls: Call[] = [];
  const credentials = new Set(opts.credentials ?? []);
  const enrollments = new Set(opts.enrollments ?? []);
  const host = {
    id: 7,
    name: 'kvm-1',
    state: 'INIT',
    queueUrl: 'http://q/lifeboat-host-7',
    createdAt: 'now',
  };
  const refuse = () => {
    throw new ApiAnswerError(401, 'Unauthorized', 'invalid token');
  };
  const connect: ApiConnector = (bearer) => ({
    get: async <T>(path: string) => {
      calls.push({ bearer, method: 'GET', path });
      if (path !== '/hosts/7' || !credentials.has(bearer)) refuse();
      return host as T;
    },
    post: async <T>(path: string, body: unknown) => {
      calls.push({ bearer, method: 'POST', path, body });
      if (path !== '/hosts/register' || !enrollments.delete(bearer)) refuse();
      const credential = `lbh_${credentials.size + 1}`;
      credentials.add(credential);
      return { host, credential } as T;
    },
    put: async <T>(path: string, body: unknown) => {
      calls.push({ bearer, method: 'PUT', path, body });
      if (!credentials.has(bearer)) refuse();
      return {} as T;
    },
  });
  return { connect, calls };
}

const connectOptions = (dir: string, token?: string) => ({
  name: 'kvm-1',
  stateDir: dir,
  enrollToken: async () => token,
  runnerVersion: '1.0.0',
  log: silentLogger,
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('runner identity', () => {
  it('registers with its enrollment token, saving its credential and private key 0600', async () => {
    const dir = await stateDir();
    const api = fakeApi({ enrollments: ['lbe_one'] });
    const { host, api: asHost } = await connectHost(api.connect, connectOptions(dir, 'lbe_one'));
    expect(host).toEqual({ id: 7, name: 'kvm-1', queueUrl: 'http://q/lifeboat-host-7' });

    const [register] = api.calls;
    expect(register).toMatchObject({ bearer: 'lbe_one', method: 'POST', path: '/hosts/register' });
    const body = register?.body as { name: string; publicKey: string; runnerVersion: string };
    expect(body).toMatchObject({ name: 'kvm-1', runnerVersion: '1.0.0' });

    expect(JSON.parse(await readFile(identityPath(dir), 'utf8'))).toEqual({
      hostId: 7,
      name: 'kvm-1',
      credential: 'lbh_1',
    });
    expect(await mode(identityPath(dir))).toBe(0o600);
    expect(hostKeyPath(dir)).toBe(join(dir, 'host-key.pem'));
    const pem = await readFile(hostKeyPath(dir), 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(await mode(hostKeyPath(dir))).toBe(0o600);
    // The public key registered is the one of the private key kept.
    const publicOfFile = createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'pem' });
    expect(body.publicKey).toBe(publicOfFile);

    // From now on the runner speaks as its host, never with the enrollment token.
    await asHost.put('/hosts/7/inventory', { vms: [] });
    expect(api.calls.at(-1)).toMatchObject({ bearer: 'lbh_1', method: 'PUT' });
  });

  it('reuses the saved credential at the next start, even with a (spent) token in its environment', async () => {
    const dir = await stateDir();
    const first = fakeApi({ enrollments: ['lbe_one'] });
    await connectHost(first.connect, connectOptions(dir, 'lbe_one'));
    const pem = await readFile(hostKeyPath(dir), 'utf8');

    const again = fakeApi({ credentials: ['lbh_1'] });
    const { host } = await connectHost(again.connect, connectOptions(dir, 'lbe_one'));
    expect(host.id).toBe(7);
    expect(again.calls).toEqual([{ bearer: 'lbh_1', method: 'GET', path: '/hosts/7' }]);
    expect(await readFile(hostKeyPath(dir), 'utf8')).toBe(pem);
  });

  it('keeps an existing host key when it registers', async () => {
    const dir = await stateDir();
    const { privateKey, publicKey } = generateHostKeyPair();
    await writeFile(hostKeyPath(dir), privateKey, { mode: 0o644 });
    const api = fakeApi({ enrollments: ['lbe_one'] });
    await connectHost(api.connect, connectOptions(dir, 'lbe_one'));
    expect(api.calls[0]?.body).toMatchObject({ publicKey });
    expect(await readFile(hostKeyPath(dir), 'utf8')).toBe(privateKey);
    // And tightens its mode.
    expect(await mode(hostKeyPath(dir))).toBe(0o600);
  });

  it('registers again when the API refuses its credential and a new token is at hand', async () => {
    const dir = await stateDir();
    await saveIdentity(dir, { hostId: 7, name: 'kvm-1', credential: 'lbh_revoked' });
    const api = fakeApi({ enrollments: ['lbe_new'] });
    await connectHost(api.connect, connectOptions(dir, 'lbe_new'));
    expect(api.calls.map((c) => `${c.bearer} ${c.method} ${c.path}`)).toEqual([
      'lbh_revoked GET /hosts/7',
      'lbe_new POST /hosts/register',
    ]);
    expect(JSON.parse(await readFile(identityPath(dir), 'utf8')).credential).toBe('lbh_1');
  });

  it('without identity nor token: a clear error, and nothing asked of the API or written', async () => {
    const dir = await stateDir();
    const api = fakeApi();
    const error = await connectHost(api.connect, connectOptions(dir)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotEnrolled);
    expect((error as Error).message).toBe(
      `no host identity in ${identityPath(dir)} and no enrollment token: an admin runs ` +
        '`lifeboat host enroll kvm-1` and the runner starts with that token in LIFEBOAT_ENROLL_TOKEN ' +
        'or in a file named by --enroll-token-file',
    );
    expect(api.calls).toEqual([]);
    await expect(stat(hostKeyPath(dir))).rejects.toThrow(/ENOENT/);
  });

  it('a refused credential without a token is NotEnrolled, naming the identity file', async () => {
    const dir = await stateDir();
    await saveIdentity(dir, { hostId: 7, name: 'kvm-1', credential: 'lbh_revoked' });
    await expect(connectHost(fakeApi().connect, connectOptions(dir))).rejects.toThrow(
      new RegExp(`^the API refuses this host's credential \\(${identityPath(dir)}\\)`),
    );
  });

  it('refuses a damaged identity or key file without showing its content', async () => {
    const dir = await stateDir();
    await writeFile(identityPath(dir), '{"credential":"lbh_secret"', { mode: 0o600 });
    const damaged = await connectHost(fakeApi().connect, connectOptions(dir, 'lbe_x')).catch(
      (e: unknown) => e,
    );
    expect(damaged).toBeInstanceOf(ValidationError);
    expect((damaged as Error).message).not.toContain('lbh_secret');

    const other = await stateDir();
    await writeFile(hostKeyPath(other), 'not a key');
    await expect(
      connectHost(fakeApi({ enrollments: ['lbe_x'] }).connect, connectOptions(other, 'lbe_x')),
    ).rejects.toThrow(/host-key.pem is not an X25519 private key/);
  });

  it('reads the enrollment token from its file, trimmed; a missing file is named, not guessed', async () => {
    const dir = await stateDir();
    const file = join(dir, 'token');
    await writeFile(file, 'lbe_from_file\n', { mode: 0o600 });
    expect(await enrollmentToken({ enrollTokenFile: file })).toBe('lbe_from_file');
    expect(await enrollmentToken({ enrollToken: 'lbe_env', enrollTokenFile: file })).toBe('lbe_env');
    expect(await enrollmentToken({})).toBeUndefined();
    await expect(enrollmentToken({ enrollTokenFile: join(dir, 'none') })).rejects.toThrow(
      `cannot read the enrollment token file ${join(dir, 'none')}: ENOENT`,
    );
  });
});

describe('runner start without an identity', () => {
  const config = (dir: string, enrollToken?: string) => ({
    home: dir,
    enrollToken,
    hostName: 'hv-1',
    stateDir: join(dir, 'state'),
    libvirtUri: 'test:///default',
    pollWaitSeconds: 1,
    maxConcurrentTasks: 1,
    inventoryIntervalSeconds: 60,
    shutdownGraceSeconds: 1,
    restoreRoots: [join(dir, 'restores')],
  });
  const deps = (connect: ApiConnector) => ({
    api: connect,
    taskTokens: new FakeTaskTokens(),
    drivers: fakeDrivers(),
    secrets: async () => ({}),
    progress: async () => {},
    inventory: async () => [],
    log: silentLogger,
  });

  it('fails at once, without retrying, when it has neither identity nor enrollment token', async () => {
    const dir = await stateDir();
    const api = fakeApi();
    const started = Date.now();
    await expect(startDaemon(config(dir), deps(api.connect))).rejects.toThrow(NotEnrolled);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(api.calls).toEqual([]);
  });

  it('fails at once when the API refuses the enrollment token (spent or expired)', async () => {
    const dir = await stateDir();
    const api = fakeApi();
    const error = await startDaemon(config(dir, 'lbe_spent'), deps(api.connect)).catch((e: unknown) => e);
    expect(error).toMatchObject({ httpStatus: 401, errorName: 'Unauthorized' });
    expect(api.calls).toHaveLength(1);
  });

  it('registers and then reports its inventory as its host', async () => {
    const dir = await stateDir();
    await mkdir(join(dir, 'state'), { recursive: true });
    const api = fakeApi({ enrollments: ['lbe_one'] });
    const daemon = await startDaemon(
      { ...config(dir, 'lbe_one'), hostName: 'kvm-1' },
      { ...deps(api.connect), queue: () => new FakeQueue() },
    );
    await daemon.inventoryNow();
    await daemon.stop();
    const inventory = api.calls.find((c) => c.method === 'PUT');
    expect(inventory).toMatchObject({ bearer: 'lbh_1', path: '/hosts/7/inventory' });
    expect(api.calls.every((c) => c.bearer === 'lbh_1' || c.path === '/hosts/register')).toBe(true);
  });

  it('`lifeboat runner --token` is refused: a runner takes no API token', async () => {
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      expect(await runRunner(['--token', 'lb_admin'])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(written.join('')).toMatch(/a runner takes no API token/);
    expect(written.join('')).not.toContain('lb_admin');
  });
});
