/**
 * The runner's signed API client: what reaches the API carries a SigV4 signature for
 * `execute-api` over the very method, host, path and body sent, with the session token, and no
 * bearer token; the region comes from an execute-api endpoint, else AWS_REGION.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSignature } from '#local/sigv4-check.ts';
import { regionOfEndpoint, signedApi } from './signed-api.ts';

const CREDENTIALS = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  sessionToken: 'session-token-of-roles-anywhere',
};
const NOW = new Date('2024-01-02T03:04:05Z');

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
}

let server: Server;
let endpoint: string;
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":7}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('signedApi', () => {
  it('signs each request with AWS4-HMAC-SHA256 for execute-api, over what is actually sent', async () => {
    const api = signedApi(() => endpoint, { credentials: CREDENTIALS, region: 'eu-west-1', now: () => NOW });
    const answer = await api.put('/runner/hosts/7/key', { publicKey: 'PEM' });
    expect(answer).toEqual({ id: 7 });
    const request = received.at(-1) as Received;
    expect(request).toMatchObject({ method: 'PUT', url: '/runner/hosts/7/key' });
    expect(Buffer.from(request.body).toString()).toBe('{"publicKey":"PEM"}');
    const authorization = String(request.headers.authorization);
    expect(authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/20240102\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/,
    );
    const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';');
    expect(signedHeaders).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'content-type']));
    expect(request.headers['x-amz-date']).toBe('20240102T030405Z');
    expect(request.headers['x-amz-security-token']).toBe(CREDENTIALS.sessionToken);
    expect(authorization).not.toContain('Bearer');
    // The signature verifies against the request as received (host with its port, path, body)...
    expect(await checkSignature(request, CREDENTIALS, NOW.getTime())).toBeUndefined();
    // ...and not against another body.
    const tampered = { ...request, body: Buffer.from('{"publicKey":"OTHER"}') };
    expect(await checkSignature(tampered, CREDENTIALS, NOW.getTime())).toMatchObject({
      type: 'InvalidSignatureException',
    });
  });

  it('signs a GET without a body too', async () => {
    const api = signedApi(() => endpoint, { credentials: CREDENTIALS, region: 'us-east-1', now: () => NOW });
    await api.get('/runner/hosts/7');
    const request = received.at(-1) as Received;
    expect(request.method).toBe('GET');
    expect(String(request.headers.authorization)).toContain('/us-east-1/execute-api/aws4_request');
    expect(await checkSignature(request, CREDENTIALS, NOW.getTime())).toBeUndefined();
  });

  it('takes the region from an execute-api endpoint, else AWS_REGION, else says so', async () => {
    expect(regionOfEndpoint('a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com')).toBe('eu-central-1');
    expect(regionOfEndpoint('api.example.com')).toBeUndefined();
    const saved = process.env.AWS_REGION;
    delete process.env.AWS_REGION;
    try {
      const api = signedApi(() => endpoint, { credentials: CREDENTIALS });
      await expect(api.get('/runner/hosts/7')).rejects.toThrow(/set AWS_REGION/);
      process.env.AWS_REGION = 'ap-south-1';
      await api.get('/runner/hosts/7');
      expect(String(received.at(-1)?.headers.authorization)).toContain('/ap-south-1/execute-api/');
    } finally {
      if (saved === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = saved;
    }
  });
});
