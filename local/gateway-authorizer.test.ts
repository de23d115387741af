import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { AuthorizerCache, authorize } from './gateway-authorizer.ts';

const allowed = (name: string) => ({ isAuthorized: true, context: { principal: name } });

function event(authorization?: string): APIGatewayProxyEventV2 {
  return {
    routeKey: 'GET /vms',
    headers: authorization ? { authorization } : {},
    requestContext: {},
  } as unknown as APIGatewayProxyEventV2;
}

describe('the local gateway authorizer cache', () => {
  it('answers the same token from the cache until its time is up, then asks again', async () => {
    let now = 1_000;
    const cache = new AuthorizerCache(60_000, () => now);
    const calls: string[] = [];
    const authorizer = async (e: { identitySource: string[] }) => {
      calls.push(e.identitySource[0] ?? '');
      return allowed(`p${calls.length}`);
    };
    const first = event('Bearer a');
    expect(await authorize(authorizer as never, first, cache)).toBeUndefined();
    expect(first.requestContext).toMatchObject({ authorizer: { lambda: { principal: 'p1' } } });
    now += 59_999;
    const again = event('Bearer a');
    await authorize(authorizer as never, again, cache);
    expect(again.requestContext).toMatchObject({ authorizer: { lambda: { principal: 'p1' } } });
    await authorize(authorizer as never, event('Bearer b'), cache);
    now += 1;
    const expired = event('Bearer a');
    await authorize(authorizer as never, expired, cache);
    expect(expired.requestContext).toMatchObject({ authorizer: { lambda: { principal: 'p3' } } });
    expect(calls).toEqual(['Bearer a', 'Bearer b', 'Bearer a']);
  });

  it('caches a refusal as API Gateway does, but never an authorizer that failed', async () => {
    const cache = new AuthorizerCache(60_000);
    let fail = true;
    let calls = 0;
    const authorizer = async () => {
      calls++;
      if (fail) throw new Error('DynamoDB unreachable');
      return { isAuthorized: false };
    };
    await expect(authorize(authorizer as never, event('Bearer x'), cache)).rejects.toThrow(
      'DynamoDB unreachable',
    );
    fail = false;
    expect(await authorize(authorizer as never, event('Bearer x'), cache)).toEqual({
      status: 403,
      body: { message: 'Forbidden' },
    });
    expect(await authorize(authorizer as never, event('Bearer x'), cache)).toMatchObject({ status: 403 });
    expect(calls).toBe(2);
  });

  it('keeps nothing with a time of 0, and answers a request without a token 401 without asking', async () => {
    const cache = new AuthorizerCache(0);
    let calls = 0;
    const authorizer = async () => {
      calls++;
      return allowed('p');
    };
    await authorize(authorizer as never, event('Bearer a'), cache);
    await authorize(authorizer as never, event('Bearer a'), cache);
    expect(calls).toBe(2);
    expect(await authorize(authorizer as never, event(), cache)).toEqual({
      status: 401,
      body: { message: 'Unauthorized' },
    });
    expect(calls).toBe(2);
  });

  it('holds at most 10,000 answers, dropping the oldest first', async () => {
    const cache = new AuthorizerCache(60_000);
    for (let i = 0; i <= 10_000; i++) cache.set(`Bearer ${i}`, allowed(String(i)));
    expect(cache.get('Bearer 0')).toBeUndefined();
    expect(cache.get('Bearer 1')).toEqual(allowed('1'));
    expect(cache.get('Bearer 10000')).toEqual(allowed('10000'));
  });
});
