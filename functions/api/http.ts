/**
 * HTTP plumbing of the API Lambda: what a route receives and answers, JSON bodies, and the
 * mapping of errors to `{ error, message }` responses.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { z } from 'zod';
import { NAME_PATTERN, NAME_RULE } from '#core/accounts.ts';
import { IdText, parseBody } from '#core/contracts/api.ts';
import { LifeboatError, oneLine, ValidationError } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { log } from '#platform/log.ts';

/** Everything a route needs from the request, already parsed and authenticated. */
export interface RouteContext {
  /** The route key (`"POST /vms/{id}/backup"`): its row of the rights table applies. */
  route: string;
  params: Record<string, string>;
  query: Record<string, string>;
  /** The parsed JSON body (undefined when there is none). */
  body: unknown;
  user: User;
  requestId: string;
}

/** A route's answer: the status and the JSON body (none for 204). */
export interface Reply {
  statusCode: number;
  body?: unknown;
}

export type RouteHandler = (ctx: RouteContext) => Promise<Reply>;

/** A route that takes no caller (`auth: 'none'` in ROUTES): it reads nothing of the request. */
export type PublicHandler = () => Promise<Reply>;

/** 200 (or another status) with a JSON body. */
export function json(body: unknown, statusCode = 200): Reply {
  return { statusCode, body };
}

/** A list answer: `{ items: [...] }`. */
export function items(list: readonly unknown[]): Reply {
  return { statusCode: 200, body: { items: list } };
}

/** The numeric `{id}` path parameter; 400 naming it when it is not a small integer. */
export function pathId(ctx: RouteContext, name = 'id'): number {
  const raw = ctx.params[name] ?? '';
  const parsed = IdText.safeParse(raw);
  if (!parsed.success) throw new ValidationError(`${name}: ${ID_RULE} (got ${quoted(raw)})`);
  return parsed.data;
}

const ID_RULE = 'must be a non-negative integer';

/**
 * What each path parameter of ROUTES must look like. Every id (`{id}`, `{schedId}`) is a small
 * decimal number, a `{name}` a user or group name, a `{tokenId}` a token's public id; a parameter
 * not listed here must still be a short plain token.
 */
export const PATH_PARAMETERS: Readonly<Record<string, { pattern: RegExp; rule: string }>> = {
  id: { pattern: /^\d{1,9}$/, rule: ID_RULE },
  schedId: { pattern: /^\d{1,9}$/, rule: ID_RULE },
  // A user's or group's name (never a host principal's `host:<id>`).
  name: { pattern: NAME_PATTERN, rule: NAME_RULE },
  tokenId: { pattern: /^[0-9a-f]{16}$/, rule: 'must be 16 hex digits (see lifeboat token list)' },
};
export const OTHER_PARAMETER = {
  pattern: /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/,
  rule: 'must be 1 to 128 of A-Z a-z 0-9 . _ : -',
};

/**
 * Checks every path parameter before the route runs, so a bad one answers 400 naming it
 * whatever the route reads first (its body, another object).
 */
export function checkPathParameters(params: Readonly<Record<string, string>>): void {
  for (const [name, raw] of Object.entries(params)) {
    const { pattern, rule } = Object.hasOwn(PATH_PARAMETERS, name)
      ? (PATH_PARAMETERS[name] as (typeof PATH_PARAMETERS)[string])
      : OTHER_PARAMETER;
    if (!pattern.test(raw)) throw new ValidationError(`${name}: ${rule} (got ${quoted(raw)})`);
  }
}

/** A client's value for a message: short, quoted, control characters escaped. */
function quoted(raw: string): string {
  const text = JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);
  return text.replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Validate the query string with a schema (400 naming the parameter). */
export function parseQuery<S extends z.ZodType>(schema: S, ctx: RouteContext): z.output<S> {
  return parseBody(schema, ctx.query);
}

/** The JSON body of an event: undefined when empty, 400 when it is not JSON. */
export function parseJsonBody(event: Pick<APIGatewayProxyEventV2, 'body' | 'isBase64Encoded'>): unknown {
  if (event.body === undefined || event.body === null || event.body === '') return undefined;
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError('body: must be valid JSON');
  }
}

const HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

/** The API Gateway response of a reply. */
export function toResponse(reply: Reply): APIGatewayProxyStructuredResultV2 {
  if (reply.body === undefined) return { statusCode: reply.statusCode, headers: HEADERS, body: '' };
  return { statusCode: reply.statusCode, headers: HEADERS, body: JSON.stringify(reply.body) };
}

/** Longest message an error answer carries; longer ones are cut (they echo a client's value). */
export const MAX_MESSAGE_LENGTH = 800;

/**
 * The response of an error: typed errors answer their status with `{ error: name, message }`
 * (the message made one short line by `oneLine` of core/errors.ts); anything else is a 500 whose
 * details go to the log only (they may name internals).
 */
export function errorResponse(
  err: unknown,
  requestId: string,
  route?: string,
): APIGatewayProxyStructuredResultV2 {
  if (err instanceof LifeboatError) {
    if (err.status >= 500) log('error', err.message, { requestId, route, error: err.name });
    return toResponse({
      statusCode: err.status,
      body: { error: err.name, message: oneLine(err.message, MAX_MESSAGE_LENGTH) },
    });
  }
  log('error', 'unhandled error', {
    requestId,
    route,
    error: err instanceof Error ? err.name : typeof err,
    detail: err instanceof Error ? err.message : undefined,
    stack: err instanceof Error ? err.stack : undefined,
  });
  return toResponse({ statusCode: 500, body: { error: 'InternalError', message: 'internal error' } });
}
