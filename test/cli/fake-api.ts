/**
 * A tiny fake of the Lifeboat HTTP API for the CLI's tests: answers canned JSON per
 * `"METHOD /path"` and records every request (method, path, query, headers, body), so tests
 * check both what the CLI sends and how it renders what it gets. The real API is tested elsewhere.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

/** One request the CLI made. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** A canned answer, or a function of the request (and of how many times the route was hit). */
export type Reply =
  | { status: number; body?: unknown }
  | ((request: RecordedRequest, hit: number) => { status: number; body?: unknown });

/** A running fake API. */
export interface FakeApi {
  endpoint: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Starts a fake API on a free port of 127.0.0.1. Unknown routes answer 404 `NotFound`. */
export async function startFakeApi(routes: Record<string, Reply>): Promise<FakeApi> {
  const requests: RecordedRequest[] = [];
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const text = Buffer.concat(chunks).toString('utf8');
      const request: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body: text ? JSON.parse(text) : undefined,
      };
      requests.push(request);
      const key = `${request.method} ${request.path}`;
      const hit = (hits.get(key) ?? 0) + 1;
      hits.set(key, hit);
      const route = routes[key];
      const reply =
        route === undefined
          ? { status: 404, body: { error: 'NotFound', message: `${key} is not a route` } }
          : typeof route === 'function'
            ? route(request, hit)
            : route;
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The environment that points the CLI at a fake API (a type, so it is a `Record<string, string>`). */
export type FakeApiEnv = { LIFEBOAT_ENDPOINT: string; LIFEBOAT_TOKEN: string };

/** The fake API of a test file: at most one per test, started by `serve`, closed after the test. */
export interface FakeApiFixture {
  /**
   * Starts a fake API answering `routes` and returns the environment that points the CLI at it
   * (LIFEBOAT_ENDPOINT and LIFEBOAT_TOKEN).
   */
  serve(routes: Record<string, Reply>): Promise<FakeApiEnv>;
  /** The requests the current test's fake API has recorded (it must have been started). */
  readonly requests: RecordedRequest[];
}

/**
 * Registers, in the calling test file, an `afterEach` that closes the fake API its test started,
 * and returns what starts one and reads its requests. `token` is the LIFEBOAT_TOKEN `serve` gives.
 */
export function useFakeApi(token = 'tok-123'): FakeApiFixture {
  let api: FakeApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });
  return {
    async serve(routes) {
      await api?.close();
      api = await startFakeApi(routes);
      return { LIFEBOAT_ENDPOINT: api.endpoint, LIFEBOAT_TOKEN: token };
    },
    get requests() {
      if (api === undefined) throw new Error('no fake API is running: call serve() first');
      return api.requests;
    },
  };
}
