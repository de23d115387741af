/** The local gateway turns HTTP requests into the API Gateway v2 events the Api Lambda gets in AWS. */
import { request } from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_BODY_LIMIT, startGateway } from '#local/gateway.ts';

const ROUTES = [
  { method: 'GET', path: '/vms/{id}' },
  { method: 'POST', path: '/vms/{id}/backup' },
  { method: 'GET', path: '/images' },
] as const;

/** The identity source API Gateway (and the local gateway) requires before any authorizer runs. */
const AUTH = { authorization: 'Bearer abc' };
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
    // Every request allowed: the authorizer step has its own tests (gateway-authorizer.test.ts).
    authorizer: async () => ({ isAuthorized: true, context: {} }),
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
    const res = await fetch(`${endpoint}/images`, { headers: AUTH });
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
      const res = await fetch(`${endpoint}/vms/${segment}`, { headers: AUTH });
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

  it('answers 413 PayloadTooLarge to a body over 1 MiB, without calling the handler', async () => {
    const before = events.length;
    const res = await fetch(`${endpoint}/vms/7/backup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(GATEWAY_BODY_LIMIT + 1, 0x20),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: 'PayloadTooLarge',
      message: 'the request body is larger than 1048576 bytes',
    });
    expect(events.length).toBe(before);
    // Exactly the limit is taken; the server still answers after refusing.
    const atLimit = await fetch(`${endpoint}/vms/7/backup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: Buffer.alloc(GATEWAY_BODY_LIMIT, 0x20),
    });
    expect(atLimit.status).toBe(202);
    expect(events.at(-1)?.body).toHaveLength(GATEWAY_BODY_LIMIT);
  });

  it('refuses a streamed body with no Content-Length once past the limit, and stops reading it', async () => {
    const before = events.length;
    const total = 256 * 1024 * 1024;
    const out = await streamUntilAnswered(`${endpoint}/vms/7/backup`, total);
    expect(out.status).toBe(413);
    expect(out.body).toMatchObject({ error: 'PayloadTooLarge' });
    // The client could push only what the socket buffers hold: the server did not drain the rest.
    expect(out.written).toBeLessThan(total / 4);
    expect(events.length).toBe(before);
    expect((await fetch(`${endpoint}/health`)).status).toBe(200);
  });
});

/** POST up to `total` bytes, chunked, until the server answers; how many bytes were written then. */
function streamUntilAnswered(url: string, total: number) {
  return new Promise<{ status?: number; body: unknown; written: number }>((resolve, reject) => {
    let written = 0;
    let answered = false;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' } });
    const pump = () => {
      while (!answered && written < total) {
        written += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    req.on('response', (res) => {
      answered = true;
      const at = written;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text), written: at }));
    });
    // Once answered, the server closes the connection under the writes still in flight.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    pump();
  });
}
