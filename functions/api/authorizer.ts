/**
 * The HTTP API's Lambda REQUEST authorizer (functions/manifest.ts: `Authorizer`), in front of
 * every bearer-token route: it identifies the token (functions/api/auth.ts `identify`: one read
 * of the tokens table, one of the users table, nothing written) and answers API Gateway's
 * simple response: the principal in `requestContext.authorizer.lambda`, which the Api function
 * trusts instead of reading the token again ({@link authorizedIdentity}), or the refusal, which
 * the Api function answers 401 before any route handler runs or any table is read (why not
 * `isAuthorized: false`: {@link AuthorizerRefusal}). A request with no Authorization header at all
 * never reaches either: API Gateway answers it 401 itself. API Gateway caches an answer per
 * Authorization header for at most 60 s (infra/api.ts); the local gateway calls it on every
 * request, uncached.
 */
import type { APIGatewayProxyEventV2, APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { z } from 'zod';
import { Unauthorized } from '#core/errors.ts';
import { User } from '#core/model.ts';
import { log } from '#platform/log.ts';
import { lambda } from '../middleware.ts';
import { isEnrollment } from '../repo/users.ts';
import { type Identity, identify } from './auth.ts';

/** The context an allowed request carries: the principal, as JSON (context values are flat). */
export interface AuthorizerContext {
  principal: string;
}

/**
 * A token the authorizer did not accept, passed on with its reason: an HTTP API answers an
 * authorizer's `isAuthorized: false` itself with 403 `{"message":"Forbidden"}` and no reason (it
 * has no gateway responses to change that), while a caller whose token expired or was revoked
 * must get 401 and be told which. So the authorizer lets the request on with the refusal, and the
 * Api function answers 401 `{ error, message }` from it before any route handler or table read.
 */
export interface AuthorizerRefusal {
  refused: string;
}

/** API Gateway's simple response of a REQUEST authorizer. */
export interface AuthorizerResult {
  isAuthorized: boolean;
  context?: AuthorizerContext | AuthorizerRefusal;
}

/**
 * The principal as the authorizer hands it on: the user (never a token hash of the users
 * table) and, for a tokens-table token, what noting its last use needs (its hash is the
 * table's key, not the token).
 */
const Principal = z.object({
  user: User.omit({ tokenHash: true }),
  /**
   * An enrollment's token hash: registration consumes the enrollment only while its record still
   * holds the hash of the token presented (the index the authorizer read may lag behind).
   */
  enrollmentHash: z.string().length(64).optional(),
  token: z
    .object({ hash: z.string().length(64), id: z.string().min(1), lastUsed: z.string().optional() })
    .optional(),
});

/** The context of an identified principal. */
export function principalContext(identity: Identity): AuthorizerContext {
  const { tokenHash: _hash, ...user } = identity.user;
  const token = identity.token && {
    hash: identity.token.hash,
    id: identity.token.id,
    ...(identity.token.lastUsed ? { lastUsed: identity.token.lastUsed } : {}),
  };
  const enrollmentHash = isEnrollment(identity.user) ? identity.user.tokenHash : undefined;
  return {
    principal: JSON.stringify(
      Principal.parse({ user, ...(token ? { token } : {}), ...(enrollmentHash ? { enrollmentHash } : {}) }),
    ),
  };
}

/** What the authorizer reads of its event (API Gateway sends more). */
const AuthorizerEvent = z.looseObject({
  routeKey: z.string().optional(),
  headers: z.record(z.string(), z.string().optional()).optional(),
});

/**
 * The authorizer: the principal, or the refusal (see {@link AuthorizerRefusal}); both let the
 * request on to the Api function, which answers a refusal 401 without routing it.
 */
async function authorizeRequest(event: z.output<typeof AuthorizerEvent>): Promise<AuthorizerResult> {
  try {
    return { isAuthorized: true, context: principalContext(await identify(event.headers ?? {})) };
  } catch (err) {
    // Only "this token is no good" is a refusal; a DynamoDB failure stays an error (API Gateway
    // answers 500 and caches nothing), never a cached refusal of a good token.
    if (!(err instanceof Unauthorized)) throw err;
    log('info', 'authorizer: refused', { route: event.routeKey, reason: err.message });
    return { isAuthorized: true, context: { refused: err.message } };
  }
}

/**
 * The Lambda entry point (functions/manifest.ts: `Authorizer`), with the shared middleware;
 * its success is not logged (it runs on every request).
 */
export const handler: (event: APIGatewayRequestAuthorizerEventV2) => Promise<AuthorizerResult> = lambda(
  'Authorizer',
  AuthorizerEvent,
  authorizeRequest,
  { quiet: true },
);

/**
 * The principal the authorizer put in an event the Api function got, or undefined when no
 * authorizer ran (a direct call; the handler then authenticates the token itself). Only API
 * Gateway (and the local gateway, after calling this authorizer) writes `requestContext`.
 */
export function authorizedIdentity(
  event: Pick<APIGatewayProxyEventV2, 'requestContext'>,
): { user: User; token?: { hash: string; id: string; lastUsed?: string | undefined } } | undefined {
  const authorizer = (
    event.requestContext as
      | { authorizer?: { lambda?: { principal?: unknown; refused?: unknown } } }
      | undefined
  )?.authorizer;
  const refused = authorizer?.lambda?.refused;
  if (typeof refused === 'string') throw new Unauthorized(refused);
  const raw = authorizer?.lambda?.principal;
  if (raw === undefined) return undefined;
  try {
    const parsed = Principal.parse(typeof raw === 'string' ? JSON.parse(raw) : raw);
    const user = User.parse({
      ...parsed.user,
      ...(parsed.enrollmentHash ? { tokenHash: parsed.enrollmentHash } : {}),
    });
    return { user, ...(parsed.token ? { token: parsed.token } : {}) };
  } catch {
    // Written by our own authorizer: unreadable means a mismatch of versions, not a caller.
    throw new Unauthorized('the authorizer context is not readable: try again');
  }
}
