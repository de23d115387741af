import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApiClient, resolveConnection } from './client.ts';
import { ApiError, UsageError } from './errors.ts';

function homeWith(content: string | undefined): string {
  const home = mkdtempSync(join(tmpdir(), 'lifeboat-client-'));
  if (content !== undefined) writeFileSync(join(home, 'endpoint.json'), content);
  return home;
}

describe('resolveConnection', () => {
  it('prefers options, then the environment, then endpoint.json, each field on its own', () => {
    const home = homeWith(JSON.stringify({ endpoint: 'http://file:1', token: 'file-token' }));
    expect(resolveConnection({}, { LIFEBOAT_HOME: home })).toEqual({
      endpoint: 'http://file:1',
      token: 'file-token',
    });
    expect(resolveConnection({}, { LIFEBOAT_HOME: home, LIFEBOAT_ENDPOINT: 'http://env:2' })).toEqual({
      endpoint: 'http://env:2',
      token: 'file-token',
    });
    expect(
      resolveConnection(
        { endpoint: 'http://flag:3/', token: 'flag' },
        { LIFEBOAT_HOME: home, LIFEBOAT_TOKEN: 'env' },
      ),
    ).toEqual({ endpoint: 'http://flag:3', token: 'flag' });
  });

  it('is a usage error without any endpoint, or with a broken endpoint.json', () => {
    expect(() => resolveConnection({}, { LIFEBOAT_HOME: homeWith(undefined) })).toThrow(UsageError);
    expect(() => resolveConnection({}, { LIFEBOAT_HOME: homeWith('{not json') })).toThrow(
      /not a valid endpoint file/,
    );
    expect(() =>
      resolveConnection({ endpoint: 'not a url' }, { LIFEBOAT_HOME: homeWith(undefined) }),
    ).toThrow(/invalid endpoint URL/);
  });
});

describe('ApiError', () => {
  it('maps 4xx to exit 2 and 5xx to exit 1', () => {
    expect(new ApiError(404, 'NotFound', 'VM 7 does not exist').exitCode).toBe(2);
    expect(new ApiError(503, 'Throttled', 'slow down').exitCode).toBe(1);
  });
});

describe('ApiClient', () => {
  /** A server answering every request with `status` and `body`, as API Gateway answers itself. */
  async function answering(status: number, body: string) {
    const server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { endpoint: `http://127.0.0.1:${port}`, close: () => server.close() };
  }

  it("names API Gateway's own answers (a message only) by their status", async () => {
    for (const [status, message, name] of [
      [401, 'Unauthorized', 'Unauthorized'],
      [403, 'Forbidden', 'Forbidden'],
      [429, 'Too Many Requests', 'Throttled'],
      [502, 'Internal Server Error', 'HttpError'],
    ] as const) {
      const server = await answering(status, JSON.stringify({ message }));
      try {
        const client = new ApiClient({ endpoint: server.endpoint, token: 'lb_x' });
        const error = await client.request('GET', '/vms').catch((err: unknown) => err);
        expect(error).toBeInstanceOf(ApiError);
        const said = `GET /vms: the API gateway answered ${status} ${message}`;
        expect(error).toMatchObject({
          status,
          error: name,
          message: status === 403 ? `Forbidden: ${said}` : said,
        });
      } finally {
        server.close();
      }
    }
  });
});
