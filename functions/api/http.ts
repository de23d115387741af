/**
 * HTTP plumbing of the API Lambda: what a route receives and answers, JSON bodies, and the
 * mapping of errors to `{ error, message }` responses.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { z } from 'zod';
import { IdText, parseBody } from '#core/contracts/api.ts';
import { LifeboatError, ValidationError } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { log } from '../log.ts';

/** Everything a route needs from the request, already parsed and authenticated. */
export interface RouteContext {
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
  if (!parsed.success)
    throw new ValidationError(`${name}: must be a non-negative integer (got "${raw.slice(0, 40)}")`);
  return parsed.data;
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

/**
 * The response of an error: typed errors answer their status with `{ error: name, message }`;
 * anything else is a 500 whose details go to the log only (they may name internals).
 */
export function errorResponse(
  err: unknown,
  requestId: string,
  route?: string,
): APIGatewayProxyStructuredResultV2 {
  if (err instanceof LifeboatError) {
    if (err.status >= 500) log('error', err.message, { requestId, route, error: err.name });
    return toResponse({ statusCode: err.status, body: { error: err.name, message: err.message } });
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
