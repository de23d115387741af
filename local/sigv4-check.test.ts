import { createServer, type Server } from 'node:http';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newLocalCredentials } from './credentials.ts';
import { listen, MIB, readBody, sendJson } from './http.ts';
import { checkSignature, type SignedRequest, sendSignatureFailure } from './sigv4-check.ts';

const credentials = newLocalCredentials();
let server: Server;
let endpoint: string;
/** Every request the server saw, as checkSignature saw it. */
let seen: SignedRequest[] = [];

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const request = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      body: await readBody(req, MIB),
    };
    seen.push(request);
    const failure = await checkSignature(request, credentials);
    if (failure) sendSignatureFailure(res, failure);
    else sendJson(res, 200, {}, { 'content-type': 'application/x-amz-json-1.0' });
  });
  endpoint = `http://127.0.0.1:${await listen(server, 0)}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  seen = [];
});

const region = 'us-east-1';

describe('checkSignature with the SDK clients', () => {
  it('accepts what each service client signs with the local key (JSON, query string, encoded path)', async () => {
    const ddb = new DynamoDBClient({ endpoint, region, credentials, maxAttempts: 1 });
    // md5: false: this server answers {} where SQS would echo the body's MD5.
    const sqs = new SQSClient({ endpoint, region, credentials, maxAttempts: 1, md5: false });
    const sfn = new SFNClient({ endpoint, region, credentials, maxAttempts: 1 });
    const lambda = new LambdaClient({ endpoint, region, credentials, maxAttempts: 1 });
    try {
      await ddb.send(new ListTablesCommand({}));
      await sqs.send(
        new SendMessageCommand({ QueueUrl: `${endpoint}/000000000000/q-1`, MessageBody: 'é x+y' }),
      );
      await sfn.send(new ListStateMachinesCommand({}));
      await lambda
        .send(new InvokeCommand({ FunctionName: 'lifeboat-Api', Qualifier: 'a b+c', Payload: '{"a":1}' }))
        .catch(() => {}); // its answer is not Lambda's shape: only the check matters here
      expect(seen).toHaveLength(4);
      expect(seen[3]?.url).toContain('Qualifier=a%20b%2Bc');
      for (const r of seen) expect(await checkSignature(r, credentials)).toBeUndefined();
    } finally {
      for (const c of [ddb, sqs, sfn, lambda]) c.destroy();
    }
  });

  it('answers a client signing with another secret InvalidSignatureException, another key UnrecognizedClientException', async () => {
    const wrongSecret = new DynamoDBClient({
      endpoint,
      region,
      maxAttempts: 1,
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: 'not-the-secret' },
    });
    const otherKey = new SQSClient({
      endpoint,
      region,
      maxAttempts: 1,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const a = await wrongSecret.send(new ListTablesCommand({})).catch((e: Error) => e);
      expect(a).toMatchObject({ name: 'InvalidSignatureException', $metadata: { httpStatusCode: 403 } });
      const b = await otherKey
        .send(new SendMessageCommand({ QueueUrl: `${endpoint}/000000000000/q`, MessageBody: 'x' }))
        .catch((e: Error) => e);
      expect(b).toMatchObject({ name: 'UnrecognizedClientException', $metadata: { httpStatusCode: 403 } });
    } finally {
      wrongSecret.destroy();
      otherKey.destroy();
    }
  });

  it('answers an unsigned request 403 UnrecognizedClientException', async () => {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'DynamoDB_20120810.PutItem', 'content-type': 'application/x-amz-json-1.0' },
      body: '{}',
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({
      __type: 'UnrecognizedClientException',
      message: 'the request is not signed with the local access key (AWS Signature Version 4)',
    });
  });
});

describe('checkSignature on altered requests', () => {
  /** One correctly signed DynamoDB request, as received. */
  async function signed(): Promise<SignedRequest> {
    const ddb = new DynamoDBClient({ endpoint, region, credentials, maxAttempts: 1 });
    await ddb.send(new ListTablesCommand({ Limit: 5 }));
    ddb.destroy();
    const r = seen.at(-1);
    if (!r) throw new Error('no request seen');
    return r;
  }
  const withHeaders = (r: SignedRequest, headers: Record<string, string | undefined>): SignedRequest => ({
    ...r,
    headers: { ...r.headers, ...headers },
  });
  const type = async (r: SignedRequest, now?: number) => (await checkSignature(r, credentials, now))?.type;

  it('refuses a changed body, method, path, query or signed header', async () => {
    const r = await signed();
    expect(await type(r)).toBeUndefined();
    expect(await type({ ...r, body: Buffer.from('{"Limit":6}') })).toBe('InvalidSignatureException');
    expect(await type({ ...r, method: 'PUT' })).toBe('InvalidSignatureException');
    expect(await type({ ...r, url: '/other' })).toBe('InvalidSignatureException');
    expect(await type({ ...r, url: '/?x=1' })).toBe('InvalidSignatureException');
    expect(await type(withHeaders(r, { 'x-amz-target': 'DynamoDB_20120810.PutItem' }))).toBe(
      'InvalidSignatureException',
    );
    expect(await type(withHeaders(r, { host: 'example.com' }))).toBe('InvalidSignatureException');
  });

  it('refuses a date more than 15 minutes off, at either side', async () => {
    const r = await signed();
    const minute = 60_000;
    expect(await type(r, Date.now() + 14 * minute)).toBeUndefined();
    expect(await type(r, Date.now() + 16 * minute)).toBe('InvalidSignatureException');
    expect(await type(r, Date.now() - 16 * minute)).toBe('InvalidSignatureException');
    expect(await type(withHeaders(r, { 'x-amz-date': undefined }))).toBe('InvalidSignatureException');
  });

  it('refuses a signature that leaves out host, a missing signed header, a lying content hash', async () => {
    const r = await signed();
    const auth = String(r.headers.authorization);
    const noHost = auth.replace(
      /SignedHeaders=([^,]*)/,
      (_m, list: string) =>
        `SignedHeaders=${list
          .split(';')
          .filter((h) => h !== 'host')
          .join(';')}`,
    );
    expect(await type(withHeaders(r, { authorization: noHost }))).toBe('InvalidSignatureException');
    expect(await type(withHeaders(r, { 'x-amz-target': undefined }))).toBe('InvalidSignatureException');
    expect(await type(withHeaders(r, { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }))).toBe(
      'InvalidSignatureException',
    );
  });

  it('refuses a missing or foreign access key, and a malformed signature', async () => {
    const r = await signed();
    const auth = String(r.headers.authorization);
    expect(await type(withHeaders(r, { authorization: undefined }))).toBe('UnrecognizedClientException');
    expect(
      await type(
        withHeaders(r, { authorization: auth.replace(credentials.accessKeyId, 'AKIAOTHER0000000') }),
      ),
    ).toBe('UnrecognizedClientException');
    expect(
      await type(withHeaders(r, { authorization: auth.replace(/Signature=[0-9a-f]+/, 'Signature=zz') })),
    ).toBe('InvalidSignatureException');
    const other = newLocalCredentials();
    expect(await checkSignature(r, other)).toMatchObject({ type: 'UnrecognizedClientException' });
  });
});
