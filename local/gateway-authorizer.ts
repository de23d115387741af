/**
 * The local gateway's authorizer step, as API Gateway runs a Lambda REQUEST authorizer with
 * simple responses in AWS: the identity source (the Authorization header) must be there, the
 * authorizer (the manifest's `Authorizer`, which local mode invokes like every function) allows or refuses,
 * and an allowed request carries its context in `requestContext.authorizer.lambda`. Not cached.
 */
import type { APIGatewayProxyEventV2, APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { z } from 'zod';

/** Calls the authorizer with the v2 REQUEST event API Gateway would send it. */
export type AuthorizerHandler = (event: APIGatewayRequestAuthorizerEventV2) => Promise<unknown>;

/** An authorizer's simple response (functions/api/authorizer.ts). */
const SimpleResponse = z.object({
  isAuthorized: z.boolean(),
  context: z.record(z.string(), z.unknown()).optional(),
});

/** The authorizer's event of an API event: its identity source is the Authorization header. */
function authorizerEvent(
  event: APIGatewayProxyEventV2,
  authorization: string,
): APIGatewayRequestAuthorizerEventV2 {
  const { body: _body, isBase64Encoded: _b64, ...request } = event;
  return {
    ...request,
    type: 'REQUEST',
    routeArn: `arn:aws:execute-api:local:000000000000:local/$default/${event.routeKey.replace(' ', '')}`,
    identitySource: [authorization],
  } as APIGatewayRequestAuthorizerEventV2;
}

/** What API Gateway answers itself, in its own body (no `error` field). */
export interface GatewayAnswer {
  status: number;
  body: { message: string };
}

/**
 * Runs the authorizer for `event`: undefined when it allowed the request (its context then in
 * `requestContext.authorizer.lambda`, as API Gateway puts it), else API Gateway's own answer:
 * 401 `{"message":"Unauthorized"}` without calling the authorizer when the identity source (the
 * Authorization header) is missing, 403 `{"message":"Forbidden"}` when it refuses.
 */
export async function authorize(
  authorizer: AuthorizerHandler,
  event: APIGatewayProxyEventV2,
): Promise<GatewayAnswer | undefined> {
  const authorization = event.headers.authorization;
  if (!authorization) return { status: 401, body: { message: 'Unauthorized' } };
  const answer = SimpleResponse.parse(await authorizer(authorizerEvent(event, authorization)));
  if (!answer.isAuthorized) return { status: 403, body: { message: 'Forbidden' } };
  (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: answer.context ?? {} };
  return undefined;
}
