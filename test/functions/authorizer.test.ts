/**
 * The API's Lambda authorizer on DynamoDB Local: it allows a good token with its principal in
 * the context (never a token, nor the users table's hash), refuses a missing, unknown, expired
 * or revoked one, writes nothing, and lets a DynamoDB failure be an error rather than a denial.
 * The Api function then trusts that context: the principal it names, with no token lookup.
 */

import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type {
  APIGatewayProxyStructuredResultV2,
  APIGatewayRequestAuthorizerEventV2,
  Context,
} from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashToken } from '#functions/api/auth.ts';
import {
  type AuthorizerRefusal,
  type AuthorizerResult,
  authorizedIdentity,
  handler as authorizer,
} from '#functions/api/authorizer.ts';
import { handler as api } from '#functions/api/handler.ts';
import { tokens } from '#functions/repo/tokens.ts';
import { users } from '#functions/repo/users.ts';
import { dynamo } from '#platform/aws.ts';
import { apiEvent, call, seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';

const ROOT = 'root-token-authorizer-0123456789';
let db: DynamoDbLocal;

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  db = await startDynamoDbLocal();
  await seedUser('root', ROOT, 'admin', 'admin');
}, 120_000);
afterAll(async () => {
  await db?.stop();
});

/** The authorizer's answer for `authorization` (a header value, or none). */
function authorize(authorization?: string): Promise<AuthorizerResult> {
  return authorizer({
    version: '2.0',
    type: 'REQUEST',
    routeArn: 'arn:aws:execute-api:us-east-1:123456789012:abc/$default/GET/users/alice',
    identitySource: authorization ? [authorization] : [],
    routeKey: 'GET /users/{name}',
    rawPath: '/users/alice',
    rawQueryString: '',
    headers: authorization ? { authorization } : {},
    requestContext: {},
  } as unknown as APIGatewayRequestAuthorizerEventV2);
}

async function newUser(name: string): Promise<{ token: string; tokenId: string }> {
  const res = await call('POST', '/users', { token: ROOT, body: { name } });
  expect(res.status, res.raw).toBe(201);
  return { token: res.body.token, tokenId: res.body.tokenId };
}

describe('authorizer', () => {
  it('allows a good token with its principal in the context: no token, no hash of the users table', async () => {
    const alice = await newUser('alice');
    const answer = await authorize(`Bearer ${alice.token}`);
    expect(answer.isAuthorized).toBe(true);
    const principal = JSON.parse((answer.context as { principal: string }).principal);
    expect(principal.user).toMatchObject({ name: 'alice', group: 'users', role: 'user' });
    expect(principal.token).toEqual({ hash: hashToken(alice.token), id: alice.tokenId });
    expect(JSON.stringify(answer)).not.toContain(alice.token);
    // An older principal whose hash lives on its user record: the hash stays out of the context.
    const root = await authorize(`Bearer ${ROOT}`);
    expect(JSON.parse((root.context as { principal: string }).principal)).toEqual({
      user: expect.objectContaining({ name: 'root', role: 'admin' }),
    });
    expect(JSON.stringify(root)).not.toContain(hashToken(ROOT));
  });

  it('passes on the refusal of a missing, malformed, unknown, expired or revoked token, with the reason', async () => {
    const bob = await newUser('bob');
    const short = await call('POST', '/tokens', { token: bob.token, body: { name: 's', expires: '1s' } });
    const revoked = await call('POST', '/tokens', { token: bob.token, body: { name: 'r' } });
    expect((await call('DELETE', `/tokens/${revoked.body.id}`, { token: bob.token })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, Date.parse(short.body.expiresAt) - Date.now() + 50));
    for (const [header, reason] of [
      [undefined, /missing bearer token/],
      ['Basic abc', /missing bearer token/],
      ['Bearer lb_unknown', /invalid token/],
      [`Bearer ${short.body.token}`, new RegExp(`token ${short.body.id} has expired`)],
      [`Bearer ${revoked.body.token}`, new RegExp(`token ${revoked.body.id} was revoked`)],
    ] as const) {
      // Allowed on with the refusal: API Gateway's own refusal would be a bare 403 (AuthorizerRefusal).
      const answer = await authorize(header);
      expect(answer.isAuthorized, header).toBe(true);
      expect((answer.context as AuthorizerRefusal).refused, header).toMatch(reason);
      expect(answer.context).not.toHaveProperty('principal');
    }
  });

  it('writes nothing: the last use of a token is not noted by the authorizer', async () => {
    const carol = await newUser('carol');
    const before = await tokens.find(hashToken(carol.token));
    expect((await authorize(`Bearer ${carol.token}`)).isAuthorized).toBe(true);
    expect(await tokens.find(hashToken(carol.token))).toEqual(before);
    expect(before?.lastUsed).toBeUndefined();
  });

  it('a DynamoDB failure is an error (API Gateway answers 500, caches nothing), not a denial', async () => {
    const dave = await newUser('dave');
    const table = process.env.TABLE_TOKENS;
    process.env.TABLE_TOKENS = 'lifeboat-no-such-table';
    try {
      await expect(authorize(`Bearer ${dave.token}`)).rejects.toThrow(/non-existent table|not found/i);
    } finally {
      process.env.TABLE_TOKENS = table;
    }
  });
});

describe('the Api function behind the authorizer', () => {
  const context = { awsRequestId: 'test', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;

  it('acts as the principal of the authorizer context without reading the token, and notes its use', async () => {
    const erin = await newUser('erin');
    const answer = await authorize(`Bearer ${erin.token}`);
    // No Authorization header at all: only the context says who calls.
    const event = apiEvent('GET', '/users/erin');
    (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: answer.context };
    const find = vi.spyOn(tokens, 'find');
    const res = (await api(event, context)) as APIGatewayProxyStructuredResultV2;
    expect(res.statusCode, String(res.body)).toBe(200);
    expect(JSON.parse(String(res.body))).toMatchObject({ name: 'erin' });
    expect(find).not.toHaveBeenCalled();
    find.mockRestore();
    expect((await tokens.find(hashToken(erin.token)))?.lastUsed).toEqual(expect.any(String));
    // Its rights are the principal's: erin is no admin.
    const list = apiEvent('GET', '/users');
    (list.requestContext as { authorizer?: unknown }).authorizer = { lambda: answer.context };
    expect(((await api(list, context)) as APIGatewayProxyStructuredResultV2).statusCode).toBe(403);
  });

  it('notes the use once a minute while the authorizer answer it trusts is cached, however stale its lastUsed', async () => {
    const fay = await newUser('fay');
    const answer = await authorize(`Bearer ${fay.token}`);
    // The answer as API Gateway's cache hands it on minutes later: its lastUsed long past.
    const principal = JSON.parse(String((answer.context as { principal?: string }).principal));
    principal.token.lastUsed = new Date(Date.now() - 5 * 60_000).toISOString();
    const cached = { principal: JSON.stringify(principal) };
    const send = vi.spyOn(dynamo(), 'send');
    for (let i = 0; i < 3; i++) {
      const event = apiEvent('GET', '/users/fay');
      (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: cached };
      expect(((await api(event, context)) as APIGatewayProxyStructuredResultV2).statusCode).toBe(200);
    }
    const touches = send.mock.calls.filter(
      ([command]) => command instanceof UpdateCommand && command.input.TableName === tokens.name,
    );
    send.mockRestore();
    // Before: one write per request, all but the first refused by their condition.
    expect(touches).toHaveLength(1);
    expect((await tokens.find(hashToken(fay.token)))?.lastUsed).toEqual(expect.any(String));
  });

  it("hands an enrollment on with its token's hash, which registration checks against the record", async () => {
    // (test/local/sessions.test.ts registers hosts through the local gateway and this authorizer.)
    const enrolled = await call('POST', '/hosts/enroll', { token: ROOT, body: { name: 'kvm-authz' } });
    expect(enrolled.status, enrolled.raw).toBe(201);
    const answer = await authorize(`Bearer ${enrolled.body.token}`);
    expect(answer.isAuthorized).toBe(true);
    const event = apiEvent('POST', '/hosts/register');
    (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: answer.context };
    const identity = authorizedIdentity(event);
    expect(identity?.user).toMatchObject({
      name: 'enroll:kvm-authz',
      tokenHash: hashToken(enrolled.body.token),
    });
    // A user's principal carries no hash.
    const erin = authorizedIdentity({
      requestContext: { authorizer: { lambda: (await authorize(`Bearer ${ROOT}`)).context } },
    } as never);
    expect(erin?.user.tokenHash).toBeUndefined();
  });

  it("answers a refusal 401 with the authorizer's reason, before any route runs, even with a good token in the header", async () => {
    const frank = await newUser('frank');
    const revoked = await call('POST', '/tokens', { token: frank.token, body: { name: 'gone' } });
    expect((await call('DELETE', `/tokens/${revoked.body.id}`, { token: frank.token })).status).toBe(200);
    const answer = await authorize(`Bearer ${revoked.body.token}`);
    // The header names root: the refusal decides, not a second look at the token.
    const event = apiEvent('DELETE', '/users/frank', { token: ROOT });
    (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: answer.context };
    const find = vi.spyOn(tokens, 'find');
    const res = (await api(event, context)) as APIGatewayProxyStructuredResultV2;
    expect(find).not.toHaveBeenCalled();
    find.mockRestore();
    expect(res.statusCode).toBe(401);
    expect(JSON.parse(String(res.body))).toEqual({
      error: 'Unauthorized',
      message: `token ${revoked.body.id} was revoked`,
    });
    expect(await users.find('frank')).toBeDefined();
  });

  it('refuses an unreadable context with 401 rather than guessing', async () => {
    const event = apiEvent('GET', '/users/root', { token: ROOT });
    (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: { principal: '{"user":{}}' } };
    const res = (await api(event, context)) as APIGatewayProxyStructuredResultV2;
    expect(res.statusCode).toBe(401);
    expect(await users.find('root')).toBeDefined();
  });
});
