import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetClients } from '#platform/aws.ts';
import { LocalFileStore, SECRET_RECOVERY_DAYS, SecretsManagerStore, secretStore } from './secrets.ts';

describe('LocalFileStore', () => {
  let home: string;
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'lifeboat-secrets-'));
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('keeps values in a 0600 file inside a 0700 folder and reads them back', async () => {
    const folder = join(home, 'secrets');
    const store = new LocalFileStore(folder);
    await store.put('ds/100', { RESTIC_PASSWORD: 's3cret' });
    expect(await store.get('ds/100')).toEqual({ RESTIC_PASSWORD: 's3cret' });
    expect((await stat(folder)).mode & 0o777).toBe(0o700);
    const [file] = await readdir(folder);
    expect(file).toBe('ds_100.json');
    expect((await stat(join(folder, file as string))).mode & 0o777).toBe(0o600);
  });

  it('replaces values on put and forgets them on delete', async () => {
    const store = new LocalFileStore(home);
    await store.put('ds/1', { A: '1', B: '2' });
    await store.put('ds/1', { A: '3' });
    expect(await store.get('ds/1')).toEqual({ A: '3' });
    await store.delete('ds/1');
    await store.delete('ds/1');
    await expect(store.get('ds/1')).rejects.toThrow('secret ds/1 does not exist');
  });

  it('refuses references that could escape the folder', async () => {
    const store = new LocalFileStore(home);
    await expect(store.put('../etc/passwd', { A: 'x' })).rejects.toThrow('invalid secret reference');
    await expect(store.get('/abs')).rejects.toThrow('invalid secret reference');
  });

  it('never leaves the secret in a temporary file', async () => {
    const store = new LocalFileStore(home);
    await store.put('ds/2', { RESTIC_PASSWORD: 'pw' });
    expect(await readdir(home)).toEqual(['ds_2.json']);
    expect(await readFile(join(home, 'ds_2.json'), 'utf8')).toContain('pw');
  });
});

describe('secretStore', () => {
  it('chooses the store from LIFEBOAT_SECRET_STORE', () => {
    expect(secretStore('secretsmanager')).toBeInstanceOf(SecretsManagerStore);
    const local = secretStore('local:/tmp/x');
    expect(local).toBeInstanceOf(LocalFileStore);
    expect((local as LocalFileStore).folder).toBe('/tmp/x');
    expect(() => secretStore('vault')).toThrow('LIFEBOAT_SECRET_STORE');
    expect(() => secretStore('local:')).toThrow('LIFEBOAT_SECRET_STORE');
  });
});

/**
 * A Secrets Manager endpoint speaking the AWS JSON 1.1 protocol, with the rules of the real
 * service that matter here: a secret scheduled for deletion refuses reads and writes until it
 * is restored, and it is gone only when forced.
 */
async function fakeSecretsManager() {
  const secrets = new Map<string, { value: string; deletedAt?: number }>();
  const calls: { action: string; body: Record<string, unknown> }[] = [];
  const fail = (res: ServerResponse, type: string) => {
    res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
    res.end(JSON.stringify({ __type: type, message: type }));
  };
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => {
      const action = String(req.headers['x-amz-target'] ?? '').replace('secretsmanager.', '');
      const body = JSON.parse(text || '{}') as Record<string, unknown>;
      calls.push({ action, body });
      const name = String(body.SecretId ?? body.Name);
      const secret = secrets.get(name);
      const ok = (out: Record<string, unknown> = {}) => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(
          JSON.stringify({ ARN: `arn:aws:secretsmanager:us-east-1:1:secret:${name}`, Name: name, ...out }),
        );
      };
      if (action === 'CreateSecret') {
        if (secret)
          return fail(res, secret.deletedAt ? 'InvalidRequestException' : 'ResourceExistsException');
        secrets.set(name, { value: String(body.SecretString) });
        return ok();
      }
      if (!secret) return fail(res, 'ResourceNotFoundException');
      if (action === 'DescribeSecret') return ok(secret.deletedAt ? { DeletedDate: secret.deletedAt } : {});
      if (action === 'RestoreSecret') {
        delete secret.deletedAt;
        return ok();
      }
      if (action === 'DeleteSecret' && body.ForceDeleteWithoutRecovery) {
        secrets.delete(name);
        return ok();
      }
      if (secret.deletedAt) return fail(res, 'InvalidRequestException');
      if (action === 'DeleteSecret') {
        secret.deletedAt = Math.floor(Date.now() / 1000);
        return ok({ DeletionDate: secret.deletedAt + 86_400 * Number(body.RecoveryWindowInDays ?? 30) });
      }
      if (action === 'PutSecretValue') {
        secret.value = String(body.SecretString);
        return ok();
      }
      if (action === 'GetSecretValue') return ok({ SecretString: secret.value });
      return fail(res, 'InvalidAction');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    secrets,
    calls,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('SecretsManagerStore', () => {
  let sm: Awaited<ReturnType<typeof fakeSecretsManager>>;
  const saved = { ...process.env };
  beforeAll(async () => {
    sm = await fakeSecretsManager();
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
    });
    resetClients();
  });
  afterAll(async () => {
    process.env = saved;
    resetClients();
    await sm?.stop();
  });

  it('deletes a secret with a 7-day recovery window, never forced, and a retry still succeeds', async () => {
    const store = new SecretsManagerStore();
    await store.put('ds/100', { RESTIC_PASSWORD: 'pw' });
    await store.delete('ds/100');
    await store.delete('ds/100');
    await store.delete('ds/404');
    const deletes = sm.calls.filter((c) => c.action === 'DeleteSecret');
    expect(deletes.map((c) => c.body)).toEqual([
      { SecretId: 'lifeboat/ds/100', RecoveryWindowInDays: SECRET_RECOVERY_DAYS },
      { SecretId: 'lifeboat/ds/100', RecoveryWindowInDays: SECRET_RECOVERY_DAYS },
      { SecretId: 'lifeboat/ds/404', RecoveryWindowInDays: SECRET_RECOVERY_DAYS },
    ]);
    expect(SECRET_RECOVERY_DAYS).toBe(7);
    // Still recoverable: scheduled for deletion, value kept.
    expect(sm.secrets.get('lifeboat/ds/100')).toMatchObject({ value: '{"RESTIC_PASSWORD":"pw"}' });
    expect(sm.secrets.get('lifeboat/ds/100')?.deletedAt).toBeDefined();
  });

  it('restores a secret pending deletion when it is put again', async () => {
    const store = new SecretsManagerStore();
    await store.put('ds/101', { RESTIC_PASSWORD: 'old' });
    await store.delete('ds/101');
    await store.put('ds/101', { RESTIC_PASSWORD: 'new' });
    expect(await store.get('ds/101')).toEqual({ RESTIC_PASSWORD: 'new' });
  });
});
