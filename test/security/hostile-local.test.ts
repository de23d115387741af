/**
 * The hostile battery through local mode's HTTP servers, over real sockets: the gateway in
 * front of the real API handler (on DynamoDB Local and the SQS emulator) answers a body over its
 * limit 413 `{ error, message }` without the handler ever running, and a hostile request that
 * fits 4xx, changing nothing; the Step Functions shim and the Lambda endpoint refuse an oversized
 * body with their own 413 and an unsigned one with 403, running nothing. (The sealed stack's
 * sockets and signatures end to end are test/local/sealed.test.ts's.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as authorizer } from '#functions/api/authorizer.ts';
import { handler } from '#functions/api/handler.ts';
import { ROUTES } from '#functions/api/routes.ts';
import { newLocalCredentials } from '#local/credentials.ts';
import { GATEWAY_BODY_LIMIT, startGateway } from '#local/gateway.ts';
import { MIB } from '#local/http.ts';
import { EventQueue, startLambdaEndpoint } from '#local/lambda-endpoint.ts';
import type { LocalStepFunctions } from '#local/stepfunctions/runtime.ts';
import { startStepFunctionsServer } from '#local/stepfunctions/server.ts';
import { seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';
import { type LocalSqs, startLocalSqs } from '../helpers/fauxqs.ts';
import { changes, type StateSnapshot, stateSnapshotter } from './state.ts';

const ADMIN = 'lb_admin-hostile-local-0123456789';
let db: DynamoDbLocal;
let sqs: LocalSqs;
let secretsDir: string;
let gateway: { endpoint: string; stop(): Promise<void> };
let snapshots: ReturnType<typeof stateSnapshotter>;
let handled = 0;

beforeAll(async () => {
  secretsDir = await mkdtemp(join(tmpdir(), 'lifeboat-hostile-local-'));
  process.env.LIFEBOAT_SECRET_STORE = `local:${secretsDir}/secrets`;
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  delete process.env.DISPATCHER_FUNCTION_NAME;
  [db, sqs] = await Promise.all([startDynamoDbLocal(), startLocalSqs()]);
  await seedUser('admin', ADMIN, 'admin', 'admin');
  const context = { awsRequestId: 'local', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
  gateway = await startGateway({
    port: 0,
    routes: ROUTES,
    authorizer,
    handler: (event: APIGatewayProxyEventV2) => {
      handled++;
      return handler(event, context);
    },
  });
  snapshots = stateSnapshotter(db.endpoint, db.tables, join(secretsDir, 'secrets'));
});

afterAll(async () => {
  snapshots?.close();
  await gateway?.stop();
  await Promise.all([db?.stop(), sqs?.stop()]);
  await rm(secretsDir, { recursive: true, force: true });
});

/** One raw HTTP request (no client-side path normalisation), its status and parsed JSON body. */
function send(
  endpoint: string,
  method: string,
  path: string,
  options: { body?: Buffer | string; headers?: Record<string, string>; chunked?: boolean } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          'content-type': 'application/json',
          ...(options.headers ?? {}),
          ...(options.body !== undefined && !options.chunked
            ? { 'content-length': String(Buffer.byteLength(options.body)) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? JSON.parse(text) : undefined,
          });
        });
      },
    );
    // The server may answer and close before the whole body is written: that is the point.
    req.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
    );
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

const auth = { authorization: `Bearer ${ADMIN}` };
const json = (value: unknown) => JSON.stringify(value);
const padded = (bytes: number) =>
  json({
    name: 'x'.repeat(bytes - json({ name: '', driver: 'rsync', attributes: { RSYNC_HOST: 'b' } }).length),
    driver: 'rsync',
    attributes: { RSYNC_HOST: 'b' },
  });

interface Row {
  name: string;
  method: string;
  path: string;
  body?: () => Buffer | string;
  chunked?: boolean;
  token?: boolean;
  status: number;
  /** The API's error name; `gateway` for what API Gateway answers itself (`{ message }` only). */
  error: string;
  message?: RegExp;
  /** Whether the request reached the API handler (413s never do). */
  reaches: boolean;
}

const ROWS: Row[] = [
  {
    name: 'a body one byte over the limit',
    method: 'POST',
    path: '/datastores',
    body: () => padded(GATEWAY_BODY_LIMIT + 1),
    status: 413,
    error: 'PayloadTooLarge',
    message: /^the request body is larger than 1048576 bytes$/,
    reaches: false,
  },
  {
    name: 'a 5 MB body',
    method: 'POST',
    path: '/datastores',
    body: () => padded(5 * MIB),
    status: 413,
    error: 'PayloadTooLarge',
    reaches: false,
  },
  {
    name: 'a 2 MB body sent chunked',
    method: 'POST',
    path: '/datastores',
    body: () => padded(2 * MIB),
    chunked: true,
    status: 413,
    error: 'PayloadTooLarge',
    reaches: false,
  },
  {
    name: 'a 2 MB body on a GET',
    method: 'GET',
    path: '/vms',
    body: () => Buffer.alloc(2 * MIB, 0x20),
    status: 413,
    error: 'PayloadTooLarge',
    reaches: false,
  },
  {
    name: 'a 2 MB body without a token',
    method: 'POST',
    path: '/hosts/register',
    body: () => Buffer.alloc(2 * MIB, 0x7b),
    token: false,
    status: 413,
    error: 'PayloadTooLarge',
    reaches: false,
  },
  {
    name: 'a body just under the limit with a huge name',
    method: 'POST',
    path: '/datastores',
    body: () => padded(GATEWAY_BODY_LIMIT - 16),
    status: 400,
    error: 'ValidationError',
    message: /^name: /,
    reaches: true,
  },
  {
    name: 'nesting 400,000 deep within the limit',
    method: 'POST',
    path: '/datastores',
    body: () => `${'['.repeat(400_000)}${']'.repeat(400_000)}`,
    status: 400,
    error: 'ValidationError',
    reaches: true,
  },
  {
    name: 'an encoded slash in an id',
    method: 'DELETE',
    path: '/datastores/1%2F..%2F2',
    status: 400,
    error: 'ValidationError',
    message: /^id: /,
    reaches: true,
  },
  {
    name: 'an encoded NUL in an id',
    method: 'GET',
    path: '/images/1%00',
    status: 400,
    error: 'ValidationError',
    message: /^id: /,
    reaches: true,
  },
  {
    name: 'a raw ../ path out of the routes',
    method: 'GET',
    path: '/vms/1/../../../etc/passwd',
    status: 404,
    error: 'NotFound',
    message: /^no route for GET \/etc\/passwd$/,
    reaches: false,
  },
  {
    // The gateway reads the path as a URL: `%2e%2e` is `..`, so `/vms/..` is `/`, no route.
    name: 'a percent-encoded .. as an id',
    method: 'GET',
    path: '/vms/%2e%2e',
    status: 404,
    error: 'NotFound',
    reaches: false,
  },
  {
    name: 'no token',
    method: 'POST',
    path: '/datastores',
    body: () => json({ name: 'x', driver: 'rsync', attributes: { RSYNC_HOST: 'b' } }),
    token: false,
    status: 401,
    // No identity source: the gateway answers itself, as API Gateway does; the API never runs.
    error: 'gateway',
    message: /^Unauthorized$/,
    reaches: false,
  },
  {
    name: 'a download to ../ through the gateway',
    method: 'POST',
    path: '/downloads',
    body: () => json({ url: 'restic://1/snap/disk.0.raw', toPath: '../../root/.ssh/authorized_keys' }),
    status: 400,
    error: 'ValidationError',
    message: /^toPath: /,
    reaches: true,
  },
];

describe('the local gateway in front of the real API', () => {
  it.each(ROWS.map((row) => [row.name, row] as const))('%s', async (_name, row) => {
    const before: StateSnapshot = await snapshots.take();
    const reached = handled;
    const answer = await send(gateway.endpoint, row.method, row.path, {
      ...(row.body ? { body: row.body() } : {}),
      headers: row.token === false ? {} : auth,
      chunked: row.chunked ?? false,
    });
    expect(answer.status).toBe(row.status);
    const byGateway = row.error === 'gateway';
    expect(Object.keys(answer.body as object).sort()).toEqual(byGateway ? ['message'] : ['error', 'message']);
    const { error, message } = answer.body as { error?: string; message: string };
    if (!byGateway) expect(error).toBe(row.error);
    if (row.message) expect(message).toMatch(row.message);
    expect(message.length).toBeLessThanOrEqual(800);
    expect(handled > reached).toBe(row.reaches);
    expect(changes(before, await snapshots.take())).toEqual([]);
  });

  it('still answers after every refusal', async () => {
    const ok = await send(gateway.endpoint, 'GET', '/vms', { headers: auth });
    expect(ok.status).toBe(200);
  });
});

describe('the Step Functions shim and the Lambda endpoint', () => {
  const credentials = newLocalCredentials();
  const ran: string[] = [];
  let shim: { endpoint: string; stop(): Promise<void> };
  let lambda: { endpoint: string; stop(): Promise<void> };

  beforeAll(async () => {
    // Nothing may reach them: every call is recorded and fails the test below.
    const sfn = new Proxy(
      {},
      { get: (_t, prop) => () => ran.push(`sfn.${String(prop)}`) },
    ) as unknown as LocalStepFunctions;
    const tokens = new Proxy({}, { get: (_t, prop) => () => ran.push(`tokens.${String(prop)}`) }) as never;
    shim = await startStepFunctionsServer(sfn, tokens, 0, credentials);
    const invoke = async (id: string) => {
      ran.push(`invoke ${id}`);
      return {};
    };
    lambda = await startLambdaEndpoint({ port: 0, invoke, events: new EventQueue(invoke), credentials });
  });
  afterAll(async () => {
    await shim?.stop();
    await lambda?.stop();
  });

  it('the shim answers a body over 1 MiB 413 and an unsigned StartExecution 403', async () => {
    const target = {
      'x-amz-target': 'AWSStepFunctions.StartExecution',
      'content-type': 'application/x-amz-json-1.0',
    };
    const big = await send(shim.endpoint, 'POST', '/', {
      body: Buffer.alloc(MIB + 1, 0x20),
      headers: target,
    });
    expect(big.status).toBe(413);
    expect(big.body).toEqual({
      __type: 'PayloadTooLarge',
      message: 'the request body is larger than 1048576 bytes',
    });
    const unsigned = await send(shim.endpoint, 'POST', '/', {
      body: json({
        stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:Backup',
        input: '{}',
      }),
      headers: target,
    });
    expect(unsigned.status).toBe(403);
    expect(ran).toEqual([]);
  });

  it('the Lambda endpoint answers a body over 6 MiB 413 and an unsigned Invoke 403', async () => {
    const path = '/2015-03-31/functions/lifeboat-Api/invocations';
    const big = await send(lambda.endpoint, 'POST', path, { body: Buffer.alloc(6 * MIB + 1, 0x20) });
    expect(big.status).toBe(413);
    expect(big.headers['x-amzn-errortype']).toBe('RequestTooLargeException');
    const unsigned = await send(lambda.endpoint, 'POST', path, { body: json({ routeKey: 'GET /vms' }) });
    expect(unsigned.status).toBe(403);
    expect(ran).toEqual([]);
  });
});
