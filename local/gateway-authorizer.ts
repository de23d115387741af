/**
 * The local gateway's authorizer step, as API Gateway runs a Lambda REQUEST authorizer with
 * simple responses in AWS: the identity source (the Authorization header) must be there, the
 * authorizer (the manifest's `Authorizer`, which local mode invokes like every function) allows or refuses,
 * and an allowed request carries its context in `requestContext.authorizer.lambda`. Its answers
 * are cached per Authorization header as API Gateway caches them (`resultsCacheTtl`, infra/api.ts
 * AUTHORIZER_CACHE_SECONDS; local mode's `authorizerCacheSeconds`): a revoked token, a deleted
 * user or a changed group takes effect within that time, here as there. An authorizer that
 * throws is never cached (API Gateway answers 500 and caches nothing).
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

type Answer = z.infer<typeof SimpleResponse>;

/** Most answers kept: a local stack has a handful of tokens; a flood of bad ones must not grow it. */
const MAX_CACHED = 10_000;

/** The authorizer's answers by Authorization header, each for `ttlMs` after it was given. */
export class AuthorizerCache {
  private readonly answers = new Map<string, { answer: Answer; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(authorization: string): Answer | undefined {
    const hit = this.answers.get(authorization);
    if (!hit) return undefined;
    if (hit.until > this.now()) return hit.answer;
    this.answers.delete(authorization);
    return undefined;
  }

  set(authorization: string, answer: Answer): void {
    if (this.ttlMs <= 0) return;
    this.answers.delete(authorization);
    // Oldest first in a Map's order: past the bound, the oldest answer goes.
    if (this.answers.size >= MAX_CACHED) {
      const oldest = this.answers.keys().next().value;
      if (oldest !== undefined) this.answers.delete(oldest);
    }
    this.answers.set(authorization, { answer, until: this.now() + this.ttlMs });
  }
}

/**
 * Runs the authorizer for `event`: undefined when it allowed the request (its context then in
 * `requestContext.authorizer.lambda`, as API Gateway puts it), else API Gateway's own answer:
 * 401 `{"message":"Unauthorized"}` without calling the authorizer when the identity source (the
 * Authorization header) is missing, 403 `{"message":"Forbidden"}` when it refuses. With a
 * `cache`, an answer given for the same header within its time is used without calling it.
 */
export async function authorize(
  authorizer: AuthorizerHandler,
  event: APIGatewayProxyEventV2,
  cache?: AuthorizerCache,
): Promise<GatewayAnswer | undefined> {
  const authorization = event.headers.authorization;
  if (!authorization) return { status: 401, body: { message: 'Unauthorized' } };
  let answer = cache?.get(authorization);
  if (!answer) {
    answer = SimpleResponse.parse(await authorizer(authorizerEvent(event, authorization)));
    cache?.set(authorization, answer);
  }
  if (!answer.isAuthorized) return { status: 403, body: { message: 'Forbidden' } };
  (event.requestContext as { authorizer?: unknown }).authorizer = { lambda: answer.context ?? {} };
  return undefined;
}
