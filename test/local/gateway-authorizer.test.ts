/**
 * The local gateway runs the authorizer (functions/api/authorizer.ts; local mode hands it the
 * manifest's `Authorizer` through its invoke path, test/local/e2e.test.ts) on every request,
 * before the Api function, as API Gateway does in AWS: a request without a token is answered 401
 * by the gateway itself; a refused token reaches the Api function only as the authorizer's
 * refusal, answered 401 with its reason before any route; uncached, a revocation holds from the
 * very next request, and with a cache time (local mode's default is AWS's 60 s) once the
 * token's cached answer runs out; the runner's IAM routes skip it.
 */
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as authorizer } from '#functions/api/authorizer.ts';
import { handler } from '#functions/api/handler.ts';
import { ROUTES } from '#functions/api/routes.ts';
import { startGateway } from '#local/gateway.ts';
import { seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';

const ADMIN = 'lb_admin-gateway-authorizer-0123456789';
let db: DynamoDbLocal;
let gateway: { endpoint: string; stop(): Promise<void> };
const invoked: APIGatewayProxyEventV2[] = [];

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  db = await startDynamoDbLocal();
  await seedUser('admin', ADMIN, 'admin', 'admin');
  const context = { awsRequestId: 'local', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
  gateway = await startGateway({
    port: 0,
    routes: ROUTES,
    authorizer,
    handler: (event) => {
      invoked.push(event);
      return handler(event, context);
    },
  });
}, 120_000);
afterAll(async () => {
  await gateway?.stop();
  await db?.stop();
});

async function send(method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(`${gateway.endpoint}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('local gateway authorizer', () => {
  it('hands the authorized principal to the Api function', async () => {
    const res = await send('GET', '/users/admin', ADMIN);
    expect(res.status).toBe(200);
    const context = invoked.at(-1)?.requestContext as
      | { authorizer?: { lambda?: { principal?: string } } }
      | undefined;
    const principal = JSON.parse(context?.authorizer?.lambda?.principal ?? '{}');
    expect(principal.user).toMatchObject({ name: 'admin', role: 'admin' });
  });

  it('a revoked token is refused with 401 on the next request: the Api function gets only the refusal', async () => {
    const made = await send('POST', '/users', ADMIN, { name: 'alice' });
    expect(made.status).toBe(201);
    const alice = made.body.token as string;
    expect((await send('GET', '/users/alice', alice)).status).toBe(200);
    expect((await send('DELETE', `/tokens/${made.body.tokenId}`, ADMIN)).status).toBe(200);
    const before = invoked.length;
    const refused = await send('GET', '/users/alice', alice);
    expect(refused).toEqual({
      status: 401,
      body: { error: 'Unauthorized', message: `token ${made.body.tokenId} was revoked` },
    });
    const change = await send('DELETE', '/users/admin', alice);
    expect(change.status).toBe(401);
    const refusals = invoked
      .slice(before)
      .map((e) => (e.requestContext as { authorizer?: unknown }).authorizer);
    expect(refusals).toEqual([
      { lambda: { refused: `token ${made.body.tokenId} was revoked` } },
      { lambda: { refused: `token ${made.body.tokenId} was revoked` } },
    ]);
    expect((await send('GET', '/users/admin', ADMIN)).status).toBe(200);
  });

  it('answers a request without a token as API Gateway does (401, its own body), an unknown one 401 from the Api function', async () => {
    const before = invoked.length;
    expect(await send('GET', '/vms')).toEqual({ status: 401, body: { message: 'Unauthorized' } });
    expect(invoked.length).toBe(before);
    expect(await send('POST', '/users', 'lb_nobody', { name: 'x' })).toEqual({
      status: 401,
      body: { error: 'Unauthorized', message: expect.stringMatching(/invalid token/) },
    });
    expect(await send('GET', '/users/x', ADMIN)).toMatchObject({ status: 404 });
  });

  it("skips the runner's IAM routes: the Api function answers them (401 without IAM context locally)", async () => {
    const before = invoked.length;
    const res = await send('GET', '/runner/hosts/3', ADMIN);
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/SigV4/);
    expect(invoked.length).toBe(before + 1);
  });

  it('serves the OpenAPI document to anyone: no token, or a refused one, reaches it', async () => {
    for (const token of [undefined, 'lb_nobody']) {
      const res = await send('GET', '/openapi.json', token);
      expect(res.status).toBe(200);
      expect(res.body.openapi).toBe('3.1.0');
      expect(Object.keys(res.body.paths)).toContain('/openapi.json');
    }
    // Every other route still needs its token.
    expect((await send('GET', '/config')).status).toBe(401);
  });

  it('with a cache time, reuses the answer for a token until it runs out: a revocation then holds', async () => {
    let calls = 0;
    const cached = await startGateway({
      port: 0,
      routes: ROUTES,
      authorizer: (event) => {
        calls++;
        return authorizer(event);
      },
      authorizerCacheSeconds: 1,
      handler: (event) => handler(event, { awsRequestId: 'local' } as Context),
    });
    try {
      const made = await send('POST', '/users', ADMIN, { name: 'carol' });
      const carol = made.body.token as string;
      const get = () =>
        fetch(`${cached.endpoint}/users/carol`, { headers: { authorization: `Bearer ${carol}` } }).then(
          (r) => r.status,
        );
      expect(await get()).toBe(200);
      expect((await send('DELETE', `/tokens/${made.body.tokenId}`, ADMIN)).status).toBe(200);
      const revokedAt = Date.now();
      expect(await get()).toBe(200);
      expect(calls).toBe(1);
      await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - revokedAt))));
      expect(await get()).toBe(401);
      expect(calls).toBe(2);
    } finally {
      await cached.stop();
    }
  });
});
