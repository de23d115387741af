/**
 * The rows of the hostile API battery (hostile-api.test.ts): who sends a request, the route and
 * body, and the 4xx it must get. Every row starts from a request the battery's controls show to
 * be accepted, and changes one thing: a path-like or name-like field with traversal, an
 * option-looking or control-character value, a huge or wrongly typed value, an unknown field, or
 * a caller who may not touch that object.
 */

/** Who sends a request: users, host credentials, enrollment tokens, or nobody. */
export type Principal =
  | 'admin'
  | 'alice'
  | 'bob'
  | 'host'
  | 'host2'
  | 'spentEnrollment'
  | 'freshEnrollment'
  | 'none';

/** The objects the battery's setup made (ids), and the datastore password. */
export interface Fixture {
  hostId: number;
  host2Id: number;
  aliceVm: number;
  bobVm: number;
  dsAlice: number;
  dsAdmin: number;
  dsBob: number;
  imgAlice: number;
  imgAdmin: number;
  aliceExecution: string;
  /** Download URL of a file of alice's image. */
  url: string;
  password: string;
}

export type Of<T> = T | ((f: Fixture) => T);

/** A request body: any JSON value (a string is sent as it is, as raw JSON text). */
export type Json =
  | string
  | number
  | boolean
  | null
  | readonly unknown[]
  | { readonly [key: string]: unknown };

/** One hostile request and the answer it must get. */
export interface Case {
  name: string;
  as: Principal;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: Of<string>;
  /** JSON value, or a string sent as the raw body. */
  body?: Of<Json>;
  status: number;
  /** What the message must say (it always names the field or the refusal). */
  message?: RegExp;
}

/** The value of an {@link Of}. */
export function resolve<T>(value: Of<T>, f: Fixture): T {
  return typeof value === 'function' ? (value as (f: Fixture) => T)(f) : value;
}

export const TEN_KB = 'x'.repeat(10 * 1024);
export const FIVE_MB = 'y'.repeat(5 * 1024 * 1024);
/** Nesting deeper than any stack: arrays inside arrays, as raw JSON. */
export const DEEP = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
