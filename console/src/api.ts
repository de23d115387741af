/**
 * The console's client of the Lifeboat HTTP API (same origin), typed from the API's OpenAPI
 * document (./api-types.gen.ts, generated from `GET /openapi.json`): `call(token, 'GET /vms/{id}',
 * { params: { id } })` takes the body and answers the type the document gives that operation.
 * The token lives in sessionStorage only (gone when the tab closes) and travels only in the
 * Authorization header, never in a URL.
 */
import type { Operations } from './api-types.gen.ts';

export type {
  BackupJob,
  CapacitySample,
  Datastore,
  Drill,
  Execution,
  Host,
  Image,
  Operations,
  RestoreRequestBody,
  ScheduledAction,
  Vm,
} from './api-types.gen.ts';

/** An operation of the API: `'GET /vms/{id}'`. */
export type OperationKey = keyof Operations;

/** The `{name}` parameters of a path. */
type ParamNames<P extends string> = P extends `${string}{${infer N}}${infer R}` ? N | ParamNames<R> : never;

/** What {@link call} takes beside the operation: path parameters, query and body, as typed. */
export type CallOptions<K extends OperationKey> = ([ParamNames<K>] extends [never]
  ? { params?: undefined }
  : { params: Record<ParamNames<K>, string | number> }) &
  (Operations[K]['body'] extends undefined ? { body?: undefined } : { body: Operations[K]['body'] }) & {
    query?: Record<string, string | number | undefined>;
  };

/** The options argument of {@link call}: required when the path has parameters or a body is due. */
export type CallArgs<K extends OperationKey> = [ParamNames<K>] extends [never]
  ? Operations[K]['body'] extends undefined
    ? [options?: CallOptions<K>]
    : [options: CallOptions<K>]
  : [options: CallOptions<K>];

/** The items of a list answer (`{ items: T[] }`). */
export type ItemsOf<K extends OperationKey> = Operations[K]['answer'] extends { items: (infer T)[] }
  ? T
  : never;

/** A user as `GET /me` and `GET /users/{name}` answer it. */
export interface UserView {
  name: string;
  group: string;
  admin: boolean;
  createdAt: string;
}

const TOKEN_KEY = 'lifeboat.token';

/** The signed-in token, if any. */
export function storedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** Keep the token for this tab's session. */
export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** Forget the token (sign-out). */
export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An API refusal: its status and the API's `{ error, message }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Call the API with the token, untyped (see {@link call}); the API's message as an ApiError on any refusal. */
export async function api<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const err = (parsed ?? {}) as { error?: string; message?: string };
    throw new ApiError(res.status, err.error ?? 'Error', err.message ?? `HTTP ${res.status}`);
  }
  return parsed as T;
}

/** The path of `op` with its parameters put in (each URI-encoded) and the query after. */
export function operationPath(
  op: string,
  params?: Record<string, string | number>,
  query?: CallOptions<OperationKey>['query'],
): string {
  const path = op.slice(op.indexOf(' ') + 1).replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined) throw new Error(`${op}: no value for {${name}}`);
    return encodeURIComponent(String(value));
  });
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {}))
    if (value !== undefined) search.set(name, String(value));
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

/** Call one operation of the API, typed by the OpenAPI document. */
export async function call<K extends OperationKey>(
  token: string,
  op: K,
  ...[options]: CallArgs<K>
): Promise<Operations[K]['answer']> {
  const method = op.slice(0, op.indexOf(' '));
  const path = operationPath(
    op,
    options?.params as Record<string, string | number> | undefined,
    options?.query,
  );
  return api<Operations[K]['answer']>(method, path, token, options?.body);
}

/** The items of a list operation. */
export async function list<K extends OperationKey>(
  token: string,
  op: K,
  ...rest: CallArgs<K>
): Promise<ItemsOf<K>[]> {
  const answer = (await call(token, op, ...rest)) as { items: ItemsOf<K>[] };
  return answer.items;
}

/** Who the token belongs to: `GET /me`, for any user's token, however it is stored. */
export async function whoAmI(token: string): Promise<UserView> {
  return api<UserView>('GET', '/me', token);
}
