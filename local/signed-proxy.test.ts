import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newLocalCredentials } from './credentials.ts';
import { MIB, readBody } from './http.ts';
import { type SignedProxy, startSignedProxy } from './signed-proxy.ts';

const credentials = newLocalCredentials();
let dir: string;
let backend: Server;
let proxy: SignedProxy;
/** What reached the backend behind the socket. */
const reached: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lb-proxy-'));
  const socket = join(dir, 'backend.sock');
  backend = createServer(async (req, res) => {
    reached.push({ url: req.url ?? '', headers: req.headers, body: (await readBody(req, MIB)).toString() });
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-backend': 'yes' });
    res.end('{"TableNames":["t"]}');
  });
  await new Promise<void>((resolve) => backend.listen(socket, () => resolve()));
  proxy = await startSignedProxy({
    name: 'the test backend',
    service: 'dynamodb',
    port: 0,
    socket,
    credentials,
    bodyLimit: 1024,
  });
});

afterAll(async () => {
  await proxy.stop();
  await new Promise<void>((resolve) => backend.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

const client = (secretAccessKey = credentials.secretAccessKey) =>
  new DynamoDBClient({
    endpoint: proxy.endpoint,
    region: 'us-east-1',
    maxAttempts: 1,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey },
  });

describe('signed proxy', () => {
  it('listens on 127.0.0.1 and forwards a signed request as it came, Host header included', async () => {
    expect(proxy.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const c = client();
    const out = await c.send(new ListTablesCommand({ Limit: 3 }));
    c.destroy();
    expect(out.TableNames).toEqual(['t']);
    const seen = reached.at(-1);
    expect(seen?.headers.host).toBe(proxy.endpoint.replace('http://', ''));
    expect(seen?.headers['x-amz-target']).toBe('DynamoDB_20120810.ListTables');
    expect(JSON.parse(seen?.body ?? '')).toEqual({ Limit: 3 });
  });

  it('answers 403 to a request signed with another secret, and the backend never sees it', async () => {
    const before = reached.length;
    const c = client('guessed');
    const err = await c.send(new ListTablesCommand({})).catch((e: Error) => e);
    c.destroy();
    expect(err).toMatchObject({ name: 'InvalidSignatureException', $metadata: { httpStatusCode: 403 } });
    expect(reached.length).toBe(before);
  });

  it('answers 413 to a body over its limit, before checking or forwarding anything', async () => {
    const before = reached.length;
    const res = await fetch(proxy.endpoint, { method: 'POST', body: 'x'.repeat(1025) });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      __type: 'PayloadTooLarge',
      message: 'the request body is larger than 1024 bytes',
    });
    expect(reached.length).toBe(before);
  });

  it('answers 503 naming the service when nothing listens behind the socket', async () => {
    const orphan = await startSignedProxy({
      name: 'DynamoDB Local',
      service: 'dynamodb',
      port: 0,
      socket: join(dir, 'nobody.sock'),
      credentials,
      bodyLimit: 1024,
    });
    const c = new DynamoDBClient({
      endpoint: orphan.endpoint,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials,
    });
    const err = await c.send(new ListTablesCommand({})).catch((e: Error) => e);
    c.destroy();
    await orphan.stop();
    expect(err).toMatchObject({
      $metadata: { httpStatusCode: 503 },
      message: 'DynamoDB Local is not answering',
    });
  });
});
