/**
 * The CLI's only way to the control plane: a small `fetch` wrapper over the HTTP API.
 *
 * Endpoint and token come from, in order: `--endpoint` / `--token` or `--token-file`,
 * `LIFEBOAT_ENDPOINT` / `LIFEBOAT_TOKEN`, then `${LIFEBOAT_HOME:-~/.lifeboat}/endpoint.json`
 * written by `lifeboat local up`. The token is sent as `Authorization: Bearer` and never printed.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ApiError, ConnectionError, UsageError } from './errors.ts';
import { checkToken, readTokenFile } from './token.ts';

/** Where the API is and how to authenticate to it. */
export interface Connection {
  endpoint: string;
  token?: string;
}

const EndpointFile = z.object({ endpoint: z.string().min(1), token: z.string().min(1).optional() });

/** The local state folder: `LIFEBOAT_HOME` or `~/.lifeboat`. */
export function lifeboatHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.LIFEBOAT_HOME || join(homedir(), '.lifeboat');
}

function readEndpointFile(home: string): z.infer<typeof EndpointFile> | undefined {
  const path = join(home, 'endpoint.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = EndpointFile.safeParse(safeJson(text));
  if (!parsed.success)
    throw new UsageError(`${path} is not a valid endpoint file: run \`lifeboat local up\``);
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Resolves the connection from the global options, then the environment, then endpoint.json.
 * Each of endpoint and token falls through independently, so `--endpoint` alone still picks up
 * `LIFEBOAT_TOKEN`. `--token` and `--token-file` together are a usage error.
 */
export function resolveConnection(
  options: { endpoint?: string; token?: string; tokenFile?: string },
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  let endpoint = options.endpoint || env.LIFEBOAT_ENDPOINT;
  let token = tokenOf(options, env);
  if (!endpoint || !token) {
    const file = readEndpointFile(lifeboatHome(env));
    endpoint ||= file?.endpoint;
    token ||= file?.token;
  }
  if (!endpoint) {
    throw new UsageError(
      'no Lifeboat API endpoint: pass --endpoint, set LIFEBOAT_ENDPOINT or run `lifeboat local up`',
    );
  }
  if (!URL.canParse(endpoint)) throw new UsageError(`invalid endpoint URL: ${withoutPassword(endpoint)}`);
  return { endpoint: endpoint.replace(/\/+$/, ''), ...(token ? { token } : {}) };
}

/** The token of the options or the environment (checked), or undefined to try endpoint.json. */
function tokenOf(
  options: { token?: string; tokenFile?: string },
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (options.token && options.tokenFile) throw new UsageError('give --token or --token-file, not both');
  if (options.token) return checkToken(options.token, '--token');
  if (options.tokenFile) return readTokenFile(options.tokenFile);
  if (env.LIFEBOAT_TOKEN) return checkToken(env.LIFEBOAT_TOKEN, 'LIFEBOAT_TOKEN');
  return undefined;
}

/** An endpoint for messages: a password in its user part (`https://u:p@host`) is masked. */
function withoutPassword(endpoint: string): string {
  return endpoint.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*):[^/@]*@/i, '$1:***@');
}

const ErrorBody = z.object({ error: z.string(), message: z.string() });
/** Error names of the statuses API Gateway answers itself. */
const GATEWAY_ERRORS: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 429: 'Throttled' };

/** What API Gateway answers itself (no token: 401; throttled: 429; ...): a message only. */
const GatewayBody = z.object({ message: z.string() }).strict();

/** How long one request may take before the CLI gives up. */
const REQUEST_TIMEOUT_MS = 60_000;

/** JSON client of the Lifeboat HTTP API. Errors become {@link ApiError} or {@link ConnectionError}. */
export class ApiClient {
  constructor(private readonly connection: Connection) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  /** GET of a list route: answers its `items` array. */
  async list<T>(path: string): Promise<T[]> {
    const body = await this.request<{ items?: unknown }>('GET', path);
    if (!Array.isArray(body?.items)) {
      throw new ApiError(200, 'BadResponse', `GET ${path}: the API answered no items list`);
    }
    return body.items as T[];
  }
  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /** Sends one request; answers the parsed JSON body (undefined when empty). */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.connection.endpoint}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.connection.token) headers.authorization = `Bearer ${this.connection.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch {
      // fetch only rejects on network failures (refused, DNS, reset, timeout): never on HTTP codes.
      throw new ConnectionError(withoutPassword(this.connection.endpoint));
    }
    const text = await response.text();
    const data = text ? safeJson(text) : undefined;
    if (!response.ok) {
      const parsed = ErrorBody.safeParse(data);
      if (parsed.success) throw new ApiError(response.status, parsed.data.error, parsed.data.message);
      const gateway = GatewayBody.safeParse(data);
      const name = GATEWAY_ERRORS[response.status] ?? 'HttpError';
      throw new ApiError(
        response.status,
        name,
        gateway.success
          ? `${method} ${path}: the API gateway answered ${response.status} ${gateway.data.message}`
          : `${method} ${path} failed: HTTP ${response.status}`,
      );
    }
    if (text && data === undefined) {
      throw new ApiError(response.status, 'BadResponse', `${method} ${path}: the API answered non-JSON`);
    }
    return data as T;
  }
}
