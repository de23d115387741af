/** The local gateway turns HTTP requests into the API Gateway v2 events the Api Lambda gets in AWS. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '#local/gateway.ts';

const ROUTES = [
  { method: 'GET', path: '/vms/{id}' },
  { method: 'POST', path: '/vms/{id}/backup' },
  { method: 'GET', path: '/images' },
] as const;

let endpoint: string;
let stop: () => Promise<void>;
const events: APIGatewayProxyEventV2[] = [];

beforeAll(async () => {
  const gw = await startGateway({
    port: 0,
    routes: ROUTES,
    handler: async (event) => {
      events.push(event);
      if (event.routeKey === 'GET /images') return { items: [] }; // no statusCode: 200 JSON
      return {
        statusCode: 202,
        headers: { 'Content-Type': 'application/json', 'X-Test': 'yes' },
        body: JSON.stringify({ ok: true }),
      };
    },
    health: () => ({ home: '/tmp/x' }),
  });
  endpoint = gw.endpoint;
  stop = gw.stop;
});

afterAll(() => stop());

describe('local gateway', () => {
  it('maps a request to the v2 event: routeKey, path parameters, query, lower-cased headers, body', async () => {
    const res = await fetch(`${endpoint}/vms/7/backup?dry=1&tag=a&tag=b`, {
      method: 'POST',
      headers: { Authorization: 'Bearer abc', 'Content-Type': 'application/json' },
      body: JSON.stringify({ datastoreId: 100 }),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-test')).toBe('yes');
    expect(await res.json()).toEqual({ ok: true });
    const event = events.at(-1);
    expect(event?.version).toBe('2.0');
    expect(event?.routeKey).toBe('POST /vms/{id}/backup');
    expect(event?.rawPath).toBe('/vms/7/backup');
    expect(event?.pathParameters).toEqual({ id: '7' });
    expect(event?.queryStringParameters).toEqual({ dry: '1', tag: 'a,b' });
    expect(event?.headers.authorization).toBe('Bearer abc');
    expect(event?.isBase64Encoded).toBe(false);
    expect(JSON.parse(event?.body ?? '')).toEqual({ datastoreId: 100 });
    expect(event?.requestContext.http.method).toBe('POST');
    expect(event?.requestContext.http.path).toBe('/vms/7/backup');
    expect(event?.requestContext.http.sourceIp).toMatch(/127\.0\.0\.1/);
    expect(event?.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(event?.requestContext.routeKey).toBe('POST /vms/{id}/backup');
  });

  it('answers a result without statusCode as 200 JSON, with no body in the event for a GET', async () => {
    const res = await fetch(`${endpoint}/images`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ items: [] });
    expect(events.at(-1)?.body).toBeUndefined();
    expect(events.at(-1)?.pathParameters).toBeUndefined();
  });

  it('hands a malformed percent-encoded segment over as sent (the API answers 400), never a 500', async () => {
    for (const [segment, id] of [
      ['%', '%'],
      ['%E0%A4%A', '%E0%A4%A'],
      ['..%2F1', '../1'],
    ] as const) {
      const res = await fetch(`${endpoint}/vms/${segment}`);
      expect(res.status).toBe(202);
      expect(events.at(-1)?.pathParameters).toEqual({ id });
    }
  });

  it('answers 404 NotFound for an unknown route or method, without calling the handler', async () => {
    const before = events.length;
    const res = await fetch(`${endpoint}/nothing/here`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'NotFound', message: 'no route for GET /nothing/here' });
    const wrongMethod = await fetch(`${endpoint}/vms/7`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(404);
    expect(events.length).toBe(before);
  });

  it('serves /health', async () => {
    const res = await fetch(`${endpoint}/health`);
    expect(await res.json()).toEqual({ status: 'ok', home: '/tmp/x' });
  });
});
