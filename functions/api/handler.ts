/**
 * The HTTP API Lambda: one middy handler for every route of {@link ROUTES}. It authenticates the
 * bearer token, parses the JSON body, routes, and maps errors to `{ error, message }`.
 */
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { assertMayCall } from './access.ts';
import { authenticate } from './auth.ts';
import { checkPathParameters, errorResponse, parseJsonBody, toResponse } from './http.ts';
import { resolveRoute } from './router.ts';

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

/** The handler without middleware (errors propagate). */
export async function route(event: Event, context?: Context): Promise<Result> {
  const user = await authenticate(event.headers);
  const { key, params, handler } = resolveRoute(event);
  checkPathParameters(params);
  // The one place a runner's principal is confined to its own host's routes.
  assertMayCall(user, key, params);
  const body = parseJsonBody(event);
  const query = Object.fromEntries(
    Object.entries(event.queryStringParameters ?? {}).filter(
      (e): e is [string, string] => e[1] !== undefined,
    ),
  );
  const reply = await handler({ params, query, body, user, requestId: requestIdOf(event, context) });
  return toResponse(reply);
}

/** The Lambda entry point (functions/manifest.ts: `Api`). */
export const handler = middy<Event, Result>().use(errorMiddleware()).handler(route);
