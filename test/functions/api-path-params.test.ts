/**
 * Every path parameter of every route is validated before anything else: a hostile `{id}` (or
 * `{schedId}`, or any parameter a route adds) answers 400 `ValidationError` naming the
 * parameter, a well-formed id nobody has answers 404, and nothing answers 500. The routes are
 * walked from ROUTES, so a route added later is covered without touching this file.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { NAME_PATTERN } from '#core/accounts.ts';
import { handler } from '#functions/api/handler.ts';
import { ROUTES, routeKey } from '#functions/api/routes.ts';
import { apiEvent } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = 'admin-token-path-params-0123';

useControlPlane({
  name: 'path-params',
  secrets: 'subfolder',
  // The runner role whose sessions IAM_AUTHORIZER stands for (the CDK app sets it in AWS).
  env: { RUNNER_ROLE_NAME: 'lifeboat-runner' },
  admin: { token: ADMIN, group: 'admin' },
});

/** Decoded values, as API Gateway hands them over in `pathParameters`. */
const HOSTILE = [
  '-1',
  '1e3',
  '../1',
  '..',
  '\u0000',
  '1\u0000',
  'x'.repeat(300),
  '9'.repeat(300),
  '0x10',
  '\uff11', // fullwidth digit one
  '',
  ' 1',
  '1 ',
  '1.5',
  '+1',
  'Infinity',
  'NaN',
  '__proto__',
  'constructor',
  '1/2',
  '%00',
  '{id}',
  '٣', // Arabic-Indic digit three
];

/** Raw path segments for the `$default` route (local gateway, no routeKey): percent-encoded or malformed. */
const RAW_SEGMENTS = [
  '%00',
  '..%2F1',
  '%2e%2e',
  '%',
  '%E0%A4%A',
  '%zz',
  '%EF%BC%91',
  encodeURIComponent('x'.repeat(300)),
];

/** An id of the right shape that names nothing. */
const UNKNOWN = '987654';

/** A body that passes a route's own body schema as far as possible, so only the path can be wrong. */
function bodyFor(method: string): unknown {
  return method === 'GET' || method === 'DELETE' ? undefined : {};
}

async function invoke(event: APIGatewayProxyEventV2) {
  const context = { awsRequestId: 'test', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
  const res = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  const raw = typeof res.body === 'string' ? res.body : '';
  return { status: res.statusCode ?? 0, body: raw ? JSON.parse(raw) : undefined };
}

/** The admin's token, or on the runner's IAM routes the IAM context API Gateway adds. */
const auth = (route: (typeof ROUTES)[number]) => (route.auth === 'iam' ? { iam: true } : { token: ADMIN });

/** The event API Gateway sends for `route` with these (decoded) path parameters. */
function gatewayEvent(
  route: (typeof ROUTES)[number],
  params: Record<string, string>,
): APIGatewayProxyEventV2 {
  const concrete = route.path.replace(/\{(\w+)\}/g, (_m, name: string) =>
    encodeURIComponent(params[name] ?? ''),
  );
  const body = bodyFor(route.method);
  return {
    ...apiEvent(route.method, '/', { ...auth(route), ...(body !== undefined ? { body } : {}) }),
    routeKey: routeKey(route),
    rawPath: concrete,
    pathParameters: params,
  };
}

const PARAMETERISED = ROUTES.filter((route) => route.path.includes('{'));
const paramsOf = (path: string) => [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);

describe.each(PARAMETERISED.map((route) => [routeKey(route), route] as const))('%s', (_key, route) => {
  const names = paramsOf(route.path);

  it.each(names)('a hostile {%s} answers 400 naming it, never 500', async (name) => {
    for (const value of HOSTILE) {
      const params = Object.fromEntries(names.map((n) => [n, n === name ? value : UNKNOWN]));
      const answer = await invoke(gatewayEvent(route, params));
      // `1e3` or `NaN` is a fine user or group name: it names nobody (or the body is refused).
      if (name === 'name' && NAME_PATTERN.test(value)) {
        expect({ value, status: answer.status }).toEqual({
          value,
          status: answer.status === 404 ? 404 : 400,
        });
        continue;
      }
      expect({ value, status: answer.status }).toEqual({ value, status: 400 });
      expect(answer.body.error).toBe('ValidationError');
      expect(answer.body.message).toMatch(new RegExp(`^${name}: `));
      // The message may quote the value, but never a control character or more than a short piece of it.
      expect([...answer.body.message].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
      expect(answer.body.message.length).toBeLessThan(200);
    }
  });

  it.each(names)(
    'a hostile raw {%s} segment on the $default route answers 400 or 404, never 500',
    async (name) => {
      for (const segment of RAW_SEGMENTS) {
        const path = route.path.replace(/\{(\w+)\}/g, (_m, n: string) => (n === name ? segment : UNKNOWN));
        const body = bodyFor(route.method);
        const event = apiEvent(route.method, '/', {
          ...auth(route),
          ...(body !== undefined ? { body } : {}),
        });
        const answer = await invoke({
          ...event,
          routeKey: '$default',
          rawPath: path,
          requestContext: { ...event.requestContext, http: { ...event.requestContext.http, path } },
        });
        expect({ segment, status: answer.status }).toEqual({
          segment,
          status: answer.status === 404 ? 404 : 400,
        });
        expect(answer.status).not.toBe(500);
      }
    },
  );

  it('a well-formed id that names nothing answers 404 or 400, never 500', async () => {
    const params = Object.fromEntries(names.map((n) => [n, UNKNOWN]));
    const answer = await invoke(gatewayEvent(route, params));
    expect([400, 404]).toContain(answer.status);
  });
});
