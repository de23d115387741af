/**
 * Local mode's host sessions (local/iam/sessions.ts), the local analog of IAM Roles Anywhere,
 * with the control plane in this process: two hosts enrolled and registered through the API as
 * runners do, each exchanging its host credential for its host's key, which the endpoints accept
 * for its own queue and refuse for the other's; a user's token, an enrollment token, garbage, a
 * replaced credential and a deleted host's get 403 and no key. The runner's own client path
 * (runner/session-credentials.ts) reads its queue with the key it gets. No credential nor key is
 * ever in the log.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenHash } from '#local/admin.ts';
import { homePaths, loadConfig } from '#local/config.ts';
import { type ControlPlane, startControlPlane } from '#local/control-plane.ts';
import { saveIdentity } from '#runner/identity.ts';
import { sqsQueueApi } from '#runner/poller.ts';
import { hostSessionClients, hostSessionCredentials, SessionAnswer } from '#runner/session-credentials.ts';
import { TEST_HOST_KEY } from '../helpers/host-key.ts';
import { apiCall, type Connection } from './responder.ts';

const R = 'us-east-1';
let home: string;
let plane: ControlPlane;
let admin: Connection;
let sqsEndpoint: string;
const logged: Record<string, unknown>[] = [];
/** Every secret the test handles: none may appear in the log. */
const secrets: string[] = [];
const hosts: Record<'A' | 'B', { id: number; name: string; queueUrl: string; credential: string }> =
  {} as never;

/** Enrolls and registers host `name` as a runner does; its host and credential. */
async function register(name: string, status = 201) {
  const enrolled = await apiCall(admin, 'POST', '/hosts/enroll', { name });
  expect(enrolled.status).toBe(201);
  const answer = await apiCall(
    { endpoint: plane.endpoint, token: enrolled.body.token },
    'POST',
    '/hosts/register',
    {
      name,
      publicKey: TEST_HOST_KEY.publicKey,
    },
  );
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  secrets.push(enrolled.body.token, answer.body.credential);
  return {
    id: answer.body.host.id as number,
    name,
    queueUrl: answer.body.host.queueUrl as string,
    credential: answer.body.credential as string,
  };
}

/** `POST /session` with `bearer` (none when undefined). */
async function session(bearer: string | undefined, method = 'POST') {
  const res = await fetch(`${plane.sessionEndpoint}/session`, {
    method,
    headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` },
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The key of host `host`'s session. */
async function keyOf(host: { credential: string }) {
  const got = await session(host.credential);
  expect(got.status).toBe(200);
  const answer = SessionAnswer.parse(got.body);
  secrets.push(answer.SecretAccessKey);
  return { accessKeyId: answer.AccessKeyId, secretAccessKey: answer.SecretAccessKey };
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'lifeboat-sessions-'));
  const { freeStackPorts } = await import('#local/ports.ts');
  const ports = await freeStackPorts();
  sqsEndpoint = `http://127.0.0.1:${ports.sqs}`;
  await writeFile(join(home, 'config.json'), JSON.stringify({ ports, runner: false, demo: false }));
  const token = newToken();
  secrets.push(token);
  plane = await startControlPlane({
    paths: homePaths(home),
    config: await loadConfig(home),
    adminTokenHash: tokenHash(token),
    log: (entry) => logged.push(entry),
  });
  admin = { endpoint: plane.endpoint, token };
  hosts.A = await register('session-host-a');
  hosts.B = await register('session-host-b');
}, 180_000);

afterAll(async () => {
  await plane?.stop();
  await rm(home, { recursive: true, force: true });
}, 60_000);

const sqsAs = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
  new SQSClient({ region: R, endpoint: sqsEndpoint, credentials });

describe('a host session', () => {
  it('is served on loopback only', () => {
    expect(plane.sessionEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("answers a host's own key for its credential, in the credential_process format", async () => {
    const got = await session(hosts.A.credential);
    expect(got.status).toBe(200);
    const answer = SessionAnswer.parse(got.body);
    expect(answer.Version).toBe(1);
    expect(Date.parse(answer.Expiration ?? '') - Date.now()).toBeGreaterThan(10 * 60_000);
    // The key of host A's runner principal: the same each time, another than B's.
    expect(answer.AccessKeyId).toBe(plane.iam.credentialsForHost({ name: hosts.A.name }).accessKeyId);
    expect((await keyOf(hosts.A)).accessKeyId).toBe(answer.AccessKeyId);
    expect((await keyOf(hosts.B)).accessKeyId).not.toBe(answer.AccessKeyId);
  });

  it("is a key the endpoints accept for the host's own queue, and refuse for the other host's", async () => {
    const sqs = sqsAs(await keyOf(hosts.A));
    try {
      const own = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: hosts.A.queueUrl, WaitTimeSeconds: 0 }),
      );
      expect(own.$metadata.httpStatusCode).toBe(200);
      await expect(
        sqs.send(new ReceiveMessageCommand({ QueueUrl: hosts.B.queueUrl, WaitTimeSeconds: 0 })),
      ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    } finally {
      sqs.destroy();
    }
  });

  it("is what a runner's clients sign with, from the credential in its identity.json", async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'lifeboat-sessions-runner-'));
    const saved = process.env.AWS_ENDPOINT_URL_SQS;
    process.env.AWS_ENDPOINT_URL_SQS = sqsEndpoint;
    const clients = hostSessionClients(hostSessionCredentials({ url: plane.sessionEndpoint, stateDir }));
    try {
      await saveIdentity(stateDir, {
        hostId: hosts.B.id,
        name: hosts.B.name,
        credential: hosts.B.credential,
      });
      const abort = new AbortController();
      expect(await sqsQueueApi(hosts.B.queueUrl, clients.sqs).receive(1, 1, abort.signal)).toEqual([]);
      await expect(
        sqsQueueApi(hosts.A.queueUrl, clients.sqs).receive(1, 1, abort.signal),
      ).rejects.toMatchObject({
        name: 'AccessDeniedException',
      });
    } finally {
      for (const c of [clients.sqs, clients.sfn, clients.dynamo]) c.destroy();
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SQS;
      else process.env.AWS_ENDPOINT_URL_SQS = saved;
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it("is refused (403, no key) for a user's token, an enrollment token, garbage or none", async () => {
    const enrolled = await apiCall(admin, 'POST', '/hosts/enroll', { name: 'session-host-c' });
    secrets.push(enrolled.body.token);
    const user = await apiCall(admin, 'POST', '/users', { name: 'session-user' });
    expect(user.status).toBe(201);
    const userToken = user.body.token as string;
    secrets.push(userToken);
    for (const bearer of [
      admin.token,
      userToken,
      enrolled.body.token,
      'lbh_not-a-credential-of-anyone-at-all',
      'garbage',
      undefined,
    ]) {
      const got = await session(bearer);
      expect(got.status, String(bearer).slice(0, 4)).toBe(403);
      expect(got.body).toEqual({ error: 'Forbidden', message: expect.stringContaining('host credential') });
      expect(got.text).not.toMatch(/LBLOCAL|AccessKeyId|SecretAccessKey/);
    }
    expect((await session(hosts.A.credential, 'GET')).status).toBe(405);
  });

  it("is refused for a replaced credential, and a deleted host's", async () => {
    const before = hosts.B.credential;
    // B registers again (a reinstalled host): its old credential no longer proves it.
    const again = await register(hosts.B.name, 200);
    expect((await session(before)).status).toBe(403);
    expect((await session(again.credential)).status).toBe(200);

    expect((await apiCall(admin, 'DELETE', `/hosts/${hosts.B.id}`)).status).toBe(204);
    expect((await session(again.credential)).status).toBe(403);
  });

  it('never logs a credential, a token or a key', async () => {
    expect(logged.some((l) => l.msg === 'host session refused')).toBe(true);
    expect(logged.some((l) => l.msg === 'host session issued' && l.hostId === hosts.A.id)).toBe(true);
    const text = JSON.stringify(logged);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });
});
