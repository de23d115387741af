/**
 * The HTTP API Lambda: one middy handler for every route of {@link ROUTES}. It knows the caller
 * from the context API Gateway adds: the bearer-token authorizer's principal (./authorizer.ts),
 * or on the runner's routes the IAM context; without an authorizer context (a direct call) it
 * authenticates the bearer token itself. It parses the JSON body, routes, and maps errors to
 * `{ error, message }`. Every change request it answered is then recorded in the audit trail
 * (./audit.ts).
 */
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { User } from '#core/model.ts';
import { touchToken } from '../repo/tokens.ts';
import { assertCaller, assertMayCall } from './access.ts';
import { recordChange, type Seen } from './audit.ts';
import { authenticate, iamHostPrincipal } from './auth.ts';
import { authorizedIdentity } from './authorizer.ts';
import { checkPathParameters, errorResponse, parseJsonBody, toResponse } from './http.ts';
import { findPublicRoute, findRoute, resolveRoute } from './router.ts';
import { IAM_ROUTE_KEYS } from './routes.ts';

type Event = APIGatewayProxyEventV2;
type Result = APIGatewayProxyStructuredResultV2;

function requestIdOf(event: Event, context: Context | undefined): string {
  return context?.awsRequestId ?? event.requestContext?.requestId ?? 'unknown';
}

/** Maps every error to its JSON response; unexpected ones are logged with the request id. */
export function errorMiddleware(): MiddlewareObj<Event, Result> {
  return {
    onError: (request) => {
      const route = request.event?.routeKey;
      request.response = errorResponse(request.error, requestIdOf(request.event, request.context), route);
    },
  };
}

/**
 * The caller of a bearer-token route: the principal the authorizer found (in AWS and behind the
 * local gateway; its last use noted here, as the authorizer writes nothing), else the token
 * looked up now (a call that came through no authorizer).
 */
async function bearerPrincipal(event: Event): Promise<User> {
  const authorized = authorizedIdentity(event);
  if (!authorized) return authenticate(event.headers);
  if (authorized.token) await touchToken(authorized.token, Date.now());
  return authorized.user;
}

/**
 * The handler without middleware (errors propagate). `seen` learns the caller, the route and the
 * reply as they become known, for the audit record.
 */
export async function route(event: Event, context?: Context, seen: Seen = {}): Promise<Result> {
  // A route without authentication (the API's description) reads nothing of the request.
  const open = findPublicRoute(event);
  if (open) return toResponse(await open());
  const found = findRoute(event);
  // An IAM route trusts only API Gateway's IAM context, any other route only a bearer token:
  // neither way in reaches the other's routes.
  const user =
    found && IAM_ROUTE_KEYS.has(found.key)
      ? iamHostPrincipal(event, found.params)
      : await bearerPrincipal(event);
  seen.user = user;
  const { key, params, handler } = found ?? resolveRoute(event);
  seen.route = key;
  seen.params = params;
  checkPathParameters(params);
  // The one place a runner's principal is confined to its own host's routes.
  assertMayCall(user, key, params);
  // Admin-only and self-only routes, from the rights table (core/rights.ts).
  assertCaller(user, key, params);
  const body = parseJsonBody(event);
  const query = Object.fromEntries(
    Object.entries(event.queryStringParameters ?? {}).filter(
      (e): e is [string, string] => e[1] !== undefined,
    ),
  );
  const reply = await handler({
    route: key,
    params,
    query,
    body,
    user,
    requestId: requestIdOf(event, context),
  });
  seen.body = reply.body;
  return toResponse(reply);
}

/** Routes the request, answers errors as {@link errorMiddleware} does, then audits a change. */
export async function routeAndAudit(event: Event, context?: Context): Promise<Result> {
  const seen: Seen = {};
  let response: Result;
  try {
    response = await route(event, context, seen);
  } catch (err) {
    response = errorResponse(err, requestIdOf(event, context), event.routeKey);
  }
  await recordChange(event, seen, response);
  return response;
}

/** The Lambda entry point (functions/manifest.ts: `Api`). */
export const handler = middy<Event, Result>().use(errorMiddleware()).handler(routeAndAudit);
