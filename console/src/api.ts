/**
 * The console's client of the Lifeboat HTTP API (same origin). Types are written by hand from
 * core/model.ts for now; generating them from /openapi.json is a later step. The token lives in
 * sessionStorage only (gone when the tab closes) and travels only in the Authorization header,
 * never in a URL.
 */
import type { Datastore, Execution, Host, Image, Vm } from '../../core/model.ts';

export type { Datastore, Execution, Host, Image, Vm };

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

/** Call the API with the token; the API's message as an ApiError on any refusal. */
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

/** The `items` of a list route. */
export async function list<T>(path: string, token: string): Promise<T[]> {
  return (await api<{ items: T[] }>('GET', path, token)).items;
}

/** Who the token belongs to: `GET /me`, for any user's token, however it is stored. */
export async function whoAmI(token: string): Promise<UserView> {
  return api<UserView>('GET', '/me', token);
}
