/**
 * The runner's host session in local mode, against small HTTP servers standing for local mode's
 * session endpoint and an SQS endpoint: the credential of identity.json goes as bearer, the key
 * is kept until shortly before it expires and asked for again after a call an endpoint refused
 * for not knowing it; no credential or key ever shows in an error.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { saveIdentity } from './identity.ts';
import {
  hostSessionClients,
  hostSessionCredentials,
  parseSessionUrl,
  type SessionAnswer,
} from './session-credentials.ts';
import { tempDir } from './testing/fakes.ts';

const CREDENTIAL = `lbh_${'c'.repeat(43)}`;
const SECRET = 's'.repeat(40);

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, server };
}

let stateDir: string;
let remove: () => Promise<void>;
const servers: Server[] = [];
/** What the session endpoint saw: the bearer of each request. */
let seen: string[];
/** The key number the session endpoint answers next. */
let issued: number;
let answer: (n: number) => SessionAnswer;

const sessionEndpoint: Handler = (req, res) => {
  seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
  issued++;
  const body = JSON.stringify(answer(issued));
  res.writeHead(200, { 'content-type': 'application/json' }).end(body);
};

beforeEach(async () => {
  ({ dir: stateDir, remove } = await tempDir());
  seen = [];
  issued = 0;
  answer = (n) => ({
    Version: 1,
    AccessKeyId: `LBLOCALKEY${n}000000`,
    SecretAccessKey: SECRET,
    Expiration: new Date(Date.now() + 15 * 60_000).toISOString(),
  });
});
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await remove();
});

const started = async (handler: Handler) => {
  const s = await serve(handler);
  servers.push(s.server);
  return s.url;
};
const registered = () => saveIdentity(stateDir, { hostId: 7, name: 'kvm-7', credential: CREDENTIAL });

describe('the host session credentials', () => {
  it('before registration there is none, and nothing is asked', async () => {
    const url = await started(sessionEndpoint);
    const provider = hostSessionCredentials({ url, stateDir });
    await expect(provider()).rejects.toMatchObject({ name: 'NotEnrolled' });
    expect(seen).toEqual([]);
  });

  it("proves the host with identity.json's credential and keeps the key until shortly before it expires", async () => {
    await registered();
    const url = await started(sessionEndpoint);
    let now = Date.now();
    const provider = hostSessionCredentials({ url, stateDir, now: () => now });
    const [first, same] = await Promise.all([provider(), provider()]);
    expect(first).toMatchObject({ accessKeyId: 'LBLOCALKEY1000000', secretAccessKey: SECRET });
    expect(first.expiration).toBeInstanceOf(Date);
    expect(same).toBe(first);
    expect(seen).toEqual([`POST /session Bearer ${CREDENTIAL}`]);
    // 8 minutes on, 7 are left: still kept. With 5 left (less than 6), asked again.
    now += 8 * 60_000;
    expect(await provider()).toBe(first);
    now += 2 * 60_000;
    expect((await provider()).accessKeyId).toBe('LBLOCALKEY2000000');
    provider.invalidate();
    expect((await provider()).accessKeyId).toBe('LBLOCALKEY3000000');
    expect(seen).toHaveLength(3);
  });

  it('a refused credential is NotEnrolled, a bad answer ApiUnavailable, neither naming a secret', async () => {
    await registered();
    const refused = await started((_req, res) =>
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"Forbidden"}'),
    );
    const error = await hostSessionCredentials({ url: refused, stateDir })().catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'NotEnrolled' });
    expect((error as Error).message).toContain('host 7');
    expect((error as Error).message).not.toContain(CREDENTIAL);

    const garbled = await started((_req, res) =>
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(`{"AccessKeyId":"X","SecretAccessKey":"${SECRET}"}`),
    );
    const bad = await hostSessionCredentials({ url: garbled, stateDir })().catch((e: Error) => e);
    expect(bad).toMatchObject({ name: 'ApiUnavailable' });
    expect((bad as Error).message).not.toContain(SECRET);
  });

  it('a call refused for an unknown key is made again once with a key asked for again', async () => {
    await registered();
    const url = await started(sessionEndpoint);
    const keysSeen: string[] = [];
    const sqs = await started((req, res) => {
      const key = /Credential=([A-Z0-9]+)\//.exec(req.headers.authorization ?? '')?.[1] ?? '';
      keysSeen.push(key);
      req.resume();
      req.on('end', () => {
        const type = { 'content-type': 'application/x-amz-json-1.0' };
        if (key === 'LBLOCALKEY1000000') {
          res.writeHead(400, type).end('{"__type":"UnrecognizedClientException","message":"unknown key"}');
        } else res.writeHead(200, type).end('{"Messages":[]}');
      });
    });
    const saved = process.env.AWS_ENDPOINT_URL_SQS;
    process.env.AWS_ENDPOINT_URL_SQS = sqs;
    const clients = hostSessionClients(hostSessionCredentials({ url, stateDir }));
    try {
      const out = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: `${sqs}/000000000000/q`, WaitTimeSeconds: 0 }),
      );
      expect(out.Messages ?? []).toEqual([]);
      expect(keysSeen).toEqual(['LBLOCALKEY1000000', 'LBLOCALKEY2000000']);
    } finally {
      for (const c of [clients.sqs, clients.sfn, clients.dynamo]) c.destroy();
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SQS;
      else process.env.AWS_ENDPOINT_URL_SQS = saved;
    }
  });
});

describe('LIFEBOAT_LOCAL_SESSION_URL', () => {
  it('is a loopback http origin, or refused before any credential is sent', () => {
    expect(parseSessionUrl(undefined)).toBeUndefined();
    expect(parseSessionUrl('http://127.0.0.1:4455/')).toBe('http://127.0.0.1:4455');
    expect(() => parseSessionUrl('http://10.0.0.5:4455')).toThrow(/loopback only/);
    expect(() => parseSessionUrl('file:///etc/passwd')).toThrow(/loopback only/);
    expect(() => parseSessionUrl('not a url')).toThrow(/not a URL/);
  });
});
