/**
 * The runner's client of the Lifeboat HTTP API (register, inventory). The endpoint is resolved
 * on every request so a late endpoint.json is picked up. A client acts as one principal, through
 * an {@link Authorize} step: a bearer token ({@link httpApi}: the enrollment token to register,
 * the host credential after), or in AWS a SigV4 signature of the runner's IAM session
 * (runner/signed-api.ts). Credentials go only in headers; errors name the method, path and the
 * API's own `{error, message}`.
 */
import { LifeboatError } from '#core/errors.ts';
import { ApiUnavailable } from './errors.ts';

/** An error answer of the API, with its `error` name and HTTP status. */
export class ApiAnswerError extends LifeboatError {
  override readonly name: string = 'ApiAnswerError';
  constructor(
    readonly httpStatus: number,
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

/** The calls the runner makes, as one principal; a fake implements it in tests. */
export interface RunnerApi {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
  put<T>(path: string, body: unknown): Promise<T>;
}

/** A client presenting `bearer` (an enrollment token or the host credential). */
export type ApiConnector = (bearer: string) => RunnerApi;

/** A request about to be sent: the headers the caller's credentials are added to. */
export interface OutgoingRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

/** Answers the request's headers with the caller's credentials added. */
export type Authorize = (request: OutgoingRequest) => Promise<Record<string, string>>;

const REQUEST_TIMEOUT_MS = 30_000;

/** `fetch` clients of the API at `endpoint()` (called per request), with a bearer token. */
export function httpApi(endpoint: () => string): ApiConnector {
  return (bearer) =>
    apiClient(endpoint, async (request) => ({ ...request.headers, authorization: `Bearer ${bearer}` }));
}

/** A `fetch` client of the API at `endpoint()` (called per request), authorized by `authorize`. */
export function apiClient(endpoint: () => string, authorize: Authorize): RunnerApi {
  const request = <T>(method: string, path: string, body?: unknown) =>
    send<T>(endpoint(), authorize, method, path, body);
  return {
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, body),
    put: (path, body) => request('PUT', path, body),
  };
}

async function send<T>(
  endpoint: string,
  authorize: Authorize,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const outgoing: OutgoingRequest = {
    method,
    url: new URL(`${endpoint}${path}`),
    headers: { accept: 'application/json' },
  };
  if (body !== undefined) {
    outgoing.headers['content-type'] = 'application/json';
    outgoing.body = JSON.stringify(body);
  }
  const headers = await authorize(outgoing);
  let response: Response;
  try {
    response = await fetch(outgoing.url, {
      method,
      headers,
      ...(outgoing.body !== undefined ? { body: outgoing.body } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch {
    throw new ApiUnavailable(`${method} ${path}: cannot reach the Lifeboat API at ${endpoint}`);
  }
  const text = await response.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiUnavailable(`${method} ${path}: the API answered non-JSON (HTTP ${response.status})`);
  }
  if (!response.ok) {
    const error = data as { error?: unknown; message?: unknown } | undefined;
    const name = typeof error?.error === 'string' ? error.error : 'HttpError';
    const message = typeof error?.message === 'string' ? error.message : `HTTP ${response.status}`;
    throw new ApiAnswerError(response.status, name, `${method} ${path}: ${name}: ${message}`);
  }
  return data as T;
}
