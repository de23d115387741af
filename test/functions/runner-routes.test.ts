/**
 * The runner's IAM-authorized routes (`/runner/hosts/{id}...`) through the API handler on
 * DynamoDB Local and fauxqs: with the IAM context API Gateway adds, the caller is host `{id}`
 * with its host credential's rights, running the same handlers as the bearer routes; without
 * that context (the local gateway, a forged header, any bearer token) they answer 401, and the
 * IAM context opens no other route.
 */
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { handler } from '#functions/api/handler.ts';
import { hosts } from '#functions/repo/hosts.ts';
import { vmsOfHost } from '#functions/repo/vms.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { apiEvent, call, IAM_AUTHORIZER } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = 'admin-token-runner-routes-0123';
const admin = { token: ADMIN };
const iam = { iam: true };

useControlPlane({
  name: 'runner-routes',
  secrets: 'subfolder',
  // The runner role whose sessions IAM_AUTHORIZER stands for (the CDK app sets it in AWS).
  env: { RUNNER_ROLE_NAME: 'lifeboat-runner' },
  admin: { token: ADMIN, group: 'admin' },
});

const domain = (name: string) => ({
  domain: name,
  state: 'RUNNING',
  disks: [
    { id: 0, target: 'vda', source: `/var/lib/libvirt/images/${name}.qcow2`, format: 'qcow2', size: 1024 },
  ],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
});

/** A host as an admin creates it before its certificate (CN = its id) is issued. */
async function adminHost(name: string): Promise<number> {
  const made = await call('POST', '/hosts', { ...admin, body: { name } });
  expect(made.status).toBe(201);
  return made.body.id;
}

describe('runner routes with the IAM context', () => {
  it('report the inventory of the path’s host, as that host', async () => {
    const id = await adminHost('kvm-iam-1');
    const res = await call('PUT', `/runner/hosts/${id}/inventory`, {
      ...iam,
      body: { vms: [domain('web-1')], runnerVersion: '9.9.9' },
    });
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([
      expect.objectContaining({ hostId: id, domain: 'web-1', owner: 'admin', state: 'RUNNING' }),
    ]);
    expect(await hosts.get(id)).toMatchObject({ state: 'MONITORED', runnerVersion: '9.9.9' });
  });

  it('read the path’s host, with its queue', async () => {
    const id = await adminHost('kvm-iam-2');
    const res = await call('GET', `/runner/hosts/${id}`, iam);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, name: 'kvm-iam-2', queueUrl: expect.stringContaining(`${id}`) });
  });

  it('store a valid X25519 public key, and refuse a bad one with 400 changing nothing', async () => {
    const id = await adminHost('kvm-iam-3');
    const { publicKey } = generateHostKeyPair();
    const res = await call('PUT', `/runner/hosts/${id}/key`, { ...iam, body: { publicKey } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, publicKey });
    expect((await hosts.get(id)).publicKey).toBe(publicKey);

    const { publicKey: ed25519 } = await import('node:crypto').then((c) =>
      c.generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'pem' } }),
    );
    for (const [body, message] of [
      [{ publicKey: 'not a key' }, /^publicKey: not a PEM public key/],
      [{ publicKey: ed25519 }, /^publicKey: must be an X25519 key/],
      [{ publicKey, owner: 'alice' }, /owner/],
      [{}, /publicKey/],
    ] as const) {
      const bad = await call('PUT', `/runner/hosts/${id}/key`, { ...iam, body });
      expect({ status: bad.status, error: bad.body.error }).toEqual({
        status: 400,
        error: 'ValidationError',
      });
      expect(bad.body.message).toMatch(message);
    }
    expect((await hosts.get(id)).publicKey).toBe(publicKey);
  });

  it('answer 404 for a host nobody created: a certificate alone makes no host', async () => {
    const res = await call('PUT', '/runner/hosts/987654/key', {
      ...iam,
      body: { publicKey: generateHostKeyPair().publicKey },
    });
    expect(res.status).toBe(404);
    expect(await hosts.find(987654)).toBeUndefined();
  });

  it('open no other route: GET /vms with the IAM context still needs a bearer token', async () => {
    const res = await call('GET', '/vms', iam);
    expect(res.status).toBe(401);
    const hostRoute = await call('GET', '/hosts/1', iam);
    expect(hostRoute.status).toBe(401);
  });
});

describe('runner routes without the IAM context', () => {
  it('answer 401 and change nothing, with no token or with the admin’s', async () => {
    const id = await adminHost('kvm-iam-4');
    for (const options of [{}, admin]) {
      const res = await call('PUT', `/runner/hosts/${id}/inventory`, {
        ...options,
        body: { vms: [domain('db-1')] },
      });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('Unauthorized');
      expect(res.body.message).toMatch(/IAM/);
      const key = await call('PUT', `/runner/hosts/${id}/key`, {
        ...options,
        body: { publicKey: generateHostKeyPair().publicKey },
      });
      expect(key.status).toBe(401);
      expect((await call('GET', `/runner/hosts/${id}`, options)).status).toBe(401);
    }
    expect(await vmsOfHost(id)).toEqual([]);
    expect(await hosts.get(id)).toMatchObject({ state: 'INIT' });
    expect((await hosts.get(id)).publicKey).toBeUndefined();
  });

  it('answer 401 to an IAM session of any other principal allowed to invoke the API', async () => {
    const id = await adminHost('kvm-iam-6');
    const other = {
      ...IAM_AUTHORIZER.iam,
      userArn: 'arn:aws:sts::123456789012:assumed-role/ci-deployer/build-7',
    };
    for (const iam of [other, { ...other, userArn: 'arn:aws:iam::123456789012:user/alice' }]) {
      const event = apiEvent('PUT', `/runner/hosts/${id}/key`, {
        body: { publicKey: generateHostKeyPair().publicKey },
      });
      event.requestContext = { ...event.requestContext, authorizer: { iam } } as typeof event.requestContext;
      const context = { awsRequestId: 'test', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
      const res = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
      expect(res.statusCode).toBe(401);
      expect(JSON.parse(res.body ?? '{}').message).toBe('this route takes only sessions of the runner role');
    }
    expect((await hosts.get(id)).publicKey).toBeUndefined();
  });

  it('answer 401 to a client that sends the IAM context as a header: only API Gateway sets it', async () => {
    const id = await adminHost('kvm-iam-5');
    const event = apiEvent('GET', `/runner/hosts/${id}`);
    event.headers = {
      authorizer: JSON.stringify(IAM_AUTHORIZER),
      'x-amzn-requestcontext': JSON.stringify({ authorizer: IAM_AUTHORIZER }),
    };
    const context = { awsRequestId: 'test', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
    const res = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
    expect(res.statusCode).toBe(401);
  });
});
