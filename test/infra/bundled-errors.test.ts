/**
 * The shipped handlers answer with the real error names: the Api and AdmitBackup functions are
 * bundled as `cdk deploy` bundles them (minified, test/helpers/bundle.ts) and called on DynamoDB
 * Local. The API's `{ error }` and a step's thrown `name` (what Lambda reports as errorType, the
 * name Retry and Catch match) must be the class names, not what minifying made of them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiEvent, seedUser } from '../helpers/api-events.ts';
import { bundleFunctions } from '../helpers/bundle.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';

const ADMIN = 'admin-token-0123456789';
type Handler = (event: unknown, context?: unknown) => Promise<unknown>;
let db: DynamoDbLocal;
let secretsDir: string;
let api: { handler: Handler };
let admitBackup: { handler: Handler };
let bundles: Awaited<ReturnType<typeof bundleFunctions>> | undefined;

beforeAll(async () => {
  secretsDir = await mkdtemp(join(tmpdir(), 'lifeboat-bundled-'));
  process.env.LIFEBOAT_SECRET_STORE = `local:${secretsDir}/secrets`;
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  delete process.env.DISPATCHER_FUNCTION_NAME;
  // The bundles read the environment when first used, as a cold Lambda does.
  db = await startDynamoDbLocal();
  await seedUser('admin', ADMIN, 'admin', 'admin');
  // One build of every function, shared with the local stacks of the run (or taken from them).
  bundles = await bundleFunctions<Handler>(['Api', 'AdmitBackup']);
  const [apiHandler, admitHandler] = bundles.handlers as [Handler, Handler];
  api = { handler: apiHandler };
  admitBackup = { handler: admitHandler };
});
afterAll(async () => {
  await Promise.all([bundles?.remove(), db?.stop()]);
  await rm(secretsDir, { recursive: true, force: true });
});

/** Calls the bundled Api handler as API Gateway does and parses the answer. */
async function call(method: string, url: string, body?: unknown) {
  const context = { awsRequestId: 'test', getRemainingTimeInMillis: () => 29_000 };
  const res = (await api.handler(
    apiEvent(method, url, { token: ADMIN, body }),
    context,
  )) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, body: JSON.parse(String(res.body)) as { error: string; message: string } };
}

describe('the bundled handlers report the real error names', () => {
  it('the Api answers 404 NotFound and 409 Conflict', async () => {
    expect(await call('GET', '/vms/424242')).toEqual({
      status: 404,
      body: { error: 'NotFound', message: expect.stringContaining('424242') },
    });
    const datastore = { name: 'bundled', driver: 'rsync', attributes: { RSYNC_HOST: 'b1' } };
    expect((await call('POST', '/datastores', datastore)).status).toBe(201);
    expect(await call('POST', '/datastores', datastore)).toEqual({
      status: 409,
      body: { error: 'Conflict', message: expect.stringContaining('bundled') },
    });
  });

  it('the Api serves the same OpenAPI document as the sources build (zod and package.json in the bundle)', async () => {
    const { openApiDocument } = await import('#functions/api/openapi.ts');
    const served = await call('GET', '/openapi.json');
    expect(served.status).toBe(200);
    expect(served.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });

  it('a step throws its typed error under its own name (Lambda errorType)', async () => {
    const thrown = await admitBackup
      .handler({ executionId: 'exec-bundled', vmId: 424242, datastoreId: 1 })
      .catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).name).toBe('NotFound');
    expect((thrown as Error & { status: number }).status).toBe(404);

    const invalid = await admitBackup.handler({ executionId: 'exec-bundled' }).catch((e: unknown) => e);
    expect((invalid as Error).name).toBe('ValidationError');
  });
});
