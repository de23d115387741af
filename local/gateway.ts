/**
 * The local HTTP API: each request becomes the API Gateway HTTP API v2 event the Api Lambda
 * gets in AWS (route matched against the same `ROUTES` list), and the handler's answer becomes
 * the HTTP response. Also serves `GET /health` for `lifeboat local up`. As API Gateway does in
 * AWS, a bearer-token route first goes through the authorizer (the manifest's `Authorizer`,
 * its answers cached per token as API Gateway caches them, or not at all); a request it refuses is
 * answered 401 here and never reaches the Api function. With `webRoot`, it also serves the web
 * console's static files at `/` and `/assets/...` (local/static-files.ts).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { RouteSpec } from '#functions/api/routes.ts';
import { AuthorizerCache, type AuthorizerHandler, authorize } from './gateway-authorizer.ts';
import { close, listen, MIB, PayloadTooLarge, readBody, sendJson, sendTooLarge } from './http.ts';
import { isConsolePath, serveConsole } from './static-files.ts';

/** A route compiled to a matcher. */
interface CompiledRoute {
  routeKey: string;
  method: string;
  pattern: RegExp;
  params: string[];
}

/** Compile API Gateway paths: `{name}` matches one segment, `{name+}` the rest of the path. */
export function compileRoutes(routes: readonly RouteSpec[]): CompiledRoute[] {
  return routes.map((route) => {
    const params: string[] = [];
    const source = route.path
      .split('/')
      .map((segment) => {
        const m = /^\{([A-Za-z0-9_]+)(\+?)\}$/.exec(segment);
        if (!m?.[1]) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        params.push(m[1]);
        return m[2] ? '(.+)' : '([^/]+)';
      })
      .join('/');
    return {
      routeKey: `${route.method} ${route.path}`,
      method: route.method,
      pattern: new RegExp(`^${source}$`),
      params,
    };
  });
}

/** The route and path parameters of a request, or undefined. */
export function matchRoute(
  routes: readonly CompiledRoute[],
  method: string,
  path: string,
): { routeKey: string; pathParameters?: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const m = route.pattern.exec(path);
    if (!m) continue;
    if (!route.params.length) return { routeKey: route.routeKey };
    const pathParameters: Record<string, string> = {};
    route.params.forEach((name, i) => {
      pathParameters[name] = decodeSegment(m[i + 1] ?? '');
    });
    return { routeKey: route.routeKey, pathParameters };
  }
  return undefined;
}

/** A percent-decoded segment; malformed encoding stays as sent, for the API to refuse with 400. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const TEXT_TYPES = /^(text\/|application\/(json|[a-z.+-]*\+json|x-www-form-urlencoded|xml))/i;

/** Build the v2 event API Gateway would send for this request. */
export function toEvent(
  req: IncomingMessage,
  body: Buffer,
  match: { routeKey: string; pathParameters?: Record<string, string> },
): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = key in query ? `${query[key]},${value}` : value;
  const contentType = headers['content-type'] ?? '';
  const binary = body.length > 0 && contentType !== '' && !TEXT_TYPES.test(contentType);
  const now = new Date();
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: match.routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0] ?? 'localhost',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: match.routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: binary,
  };
  if (Object.keys(query).length) event.queryStringParameters = query;
  if (match.pathParameters) event.pathParameters = match.pathParameters;
  if (headers.cookie) event.cookies = headers.cookie.split(/;\s*/);
  if (body.length) event.body = binary ? body.toString('base64') : body.toString('utf8');
  return event;
}

/** What the Api handler may answer (API Gateway's v2 "format 2.0" response). */
interface HandlerResponse {
  statusCode?: number;
  headers?: Record<string, string | number | boolean>;
  body?: string;
  isBase64Encoded?: boolean;
  cookies?: string[];
}

/** Calls the API handler with a v2 event. */
export type ApiHandler = (event: APIGatewayProxyEventV2) => Promise<unknown>;

/** API Gateway takes up to 10 MB; the API's bodies are small JSON documents. */
export const GATEWAY_BODY_LIMIT = MIB;

/**
 * Serve the API on 127.0.0.1:`port`. `health` fills the body of `GET /health`. A body over
 * {@link GATEWAY_BODY_LIMIT} is answered 413 `PayloadTooLarge` and never reaches the handler.
 */
export async function startGateway(opts: {
  port: number;
  routes: readonly RouteSpec[];
  handler: ApiHandler;
  /** The authorizer of every route but the IAM ones (local mode: the manifest's `Authorizer`). */
  authorizer: AuthorizerHandler;
  /**
   * Seconds an authorizer's answer is reused for the same Authorization header, as API Gateway's
   * `resultsCacheTtl` (local mode: `authorizerCacheSeconds`, AWS's 60 unless set); 0 or absent:
   * every request calls it.
   */
  authorizerCacheSeconds?: number;
  health?: () => Record<string, unknown>;
  log?: (entry: Record<string, unknown>) => void;
  /** The built web console (web/), served without a token at `/` and `/assets/...`. */
  webRoot?: string;
}): Promise<{ server: Server; port: number; endpoint: string; stop(): Promise<void> }> {
  const compiled = compileRoutes(opts.routes);
  // A time of 0 keeps nothing (AuthorizerCache.set): every request calls the authorizer.
  const authorizerCache = new AuthorizerCache((opts.authorizerCacheSeconds ?? 0) * 1000);
  // IAM routes have API Gateway's IAM check instead (none locally), public ones no check at all.
  const unguarded = new Set(
    opts.routes.filter((r) => r.auth !== undefined).map((r) => `${r.method} ${r.path}`),
  );
  const server = createServer(async (req, res) => {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    try {
      if (method === 'GET' && path === '/health') {
        sendJson(res, 200, { status: 'ok', ...opts.health?.() });
        return;
      }
      if (opts.webRoot && (method === 'GET' || method === 'HEAD') && isConsolePath(path)) {
        await serveConsole(opts.webRoot, method, path, res);
        return;
      }
      const match = matchRoute(compiled, method, path);
      let body: Buffer;
      try {
        body = await readBody(req, GATEWAY_BODY_LIMIT);
      } catch (err) {
        if (!(err instanceof PayloadTooLarge)) throw err;
        sendTooLarge(req, res, { error: 'PayloadTooLarge', message: err.message });
        return;
      }
      if (!match) {
        sendJson(res, 404, { error: 'NotFound', message: `no route for ${method} ${path}` });
        return;
      }
      const event = toEvent(req, body, match);
      const refused = unguarded.has(match.routeKey)
        ? undefined
        : await authorize(opts.authorizer, event, authorizerCache);
      if (refused) {
        sendJson(res, refused.status, refused.body);
        return;
      }
      const result = await opts.handler(event);
      writeResult(res, result);
    } catch (err) {
      opts.log?.({ level: 'error', msg: 'gateway: handler failed', method, path, error: String(err) });
      if (!res.headersSent) sendJson(res, 500, { error: 'InternalError', message: 'internal error' });
      else res.end();
    }
  });
  const port = await listen(server, opts.port);
  return { server, port, endpoint: `http://127.0.0.1:${port}`, stop: () => close(server) };
}

/** API Gateway's rules: a result without statusCode is a 200 JSON body. */
function writeResult(res: ServerResponse, result: unknown): void {
  const r = result as HandlerResponse | null | undefined;
  if (!r || typeof r !== 'object' || typeof r.statusCode !== 'number') {
    sendJson(res, 200, result ?? null);
    return;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = String(v);
  if (r.cookies?.length) headers['set-cookie'] = r.cookies;
  const body =
    r.body === undefined ? Buffer.alloc(0) : Buffer.from(r.body, r.isBase64Encoded ? 'base64' : 'utf8');
  headers['content-length'] = String(body.length);
  res.writeHead(r.statusCode, headers);
  res.end(body);
}
