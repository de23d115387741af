/**
 * Who calls. Bearer-token authentication: the token's sha256 (hex) is read from the tokens table
 * (one GetItem; an expired or revoked token is refused there), then its user; host credentials,
 * enrollments and tokens older than the tokens table are found in the users table instead. The
 * token itself is never stored nor logged. On the runner's IAM-authorized routes
 * (ROUTES with `auth: 'iam'`), API Gateway has checked a SigV4 signature instead, and the caller
 * is the host named in the path ({@link iamHostPrincipal}).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { z } from 'zod';
import { type ApiToken, tokenState } from '#core/accounts.ts';
import { Unauthorized } from '#core/errors.ts';
import { User } from '#core/model.ts';
import { tokens, touchToken } from '../repo/tokens.ts';
import {
  enrollmentExpired,
  HOSTS_GROUP,
  hostPrincipalName,
  isEnrollment,
  userByTokenHash,
  users,
} from '../repo/users.ts';
import { checkPathParameters } from './http.ts';

/**
 * Prefixes that tell tokens apart at a glance: `lb_` API tokens of users and admins, `lbe_`
 * one-time enrollment tokens, `lbh_` host credentials.
 */
export type TokenPrefix = 'lb' | 'lbe' | 'lbh';

/** A new token: the prefix and 256 random bits (base64url). */
export function newToken(prefix: TokenPrefix): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** sha256 hex of an API token, as stored in User.tokenHash. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The token of an `Authorization: Bearer <token>` header (any header-name case). */
export function bearerToken(headers: Record<string, string | undefined> | undefined): string {
  const entry = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === 'authorization');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(entry?.[1] ?? '');
  if (!match?.[1]) throw new Unauthorized('missing bearer token (Authorization: Bearer <token>)');
  return match[1];
}

/** Host credentials and enrollment tokens: only ever in the users table. */
const HOST_TOKEN = /^lb[he]_/;

/**
 * The user of a tokens-table record at `now`: 401 when it has expired or was revoked, or when
 * its user is gone (or was deleted and made again: another uid). Reads only.
 */
async function userOfToken(token: ApiToken, now: number): Promise<User> {
  const state = tokenState(token, now);
  if (state !== 'active')
    throw new Unauthorized(`token ${token.id} ${state === 'expired' ? 'has expired' : 'was revoked'}`);
  const user = await users.find(token.user);
  if (!user || user.role === 'host' || user.uid !== token.uid) throw new Unauthorized('invalid token');
  return user;
}

/** Who a bearer token is: the user, and the tokens-table record when it is one. */
export interface Identity {
  user: User;
  token?: ApiToken;
}

/**
 * The principal owning the request's token, reading the tokens and users tables only (the
 * authorizer's whole job): 401 when absent, unknown, expired, revoked or an expired enrollment.
 */
export async function identify(
  headers: Record<string, string | undefined> | undefined,
  now = Date.now(),
): Promise<Identity> {
  const token = bearerToken(headers);
  const hash = hashToken(token);
  const record = HOST_TOKEN.test(token) ? undefined : await tokens.find(hash);
  if (record) return { user: await userOfToken(record, now), token: record };
  const user = await userByTokenHash(hash);
  if (!user) throw new Unauthorized('invalid token');
  if (isEnrollment(user) && enrollmentExpired(user)) {
    throw new Unauthorized(`enrollment token expired: enroll host "${user.hostName}" again`);
  }
  return { user };
}

/** {@link identify}, then notes the token's use (at most once a minute): the API without authorizer. */
export async function authenticate(
  headers: Record<string, string | undefined> | undefined,
  now = Date.now(),
): Promise<User> {
  const { user, token } = await identify(headers, now);
  if (token) await touchToken(token, now);
  return user;
}

/**
 * What API Gateway puts in `requestContext.authorizer.iam` once IAM has authorized a request.
 * Only API Gateway writes `requestContext`: a client cannot send one (the local gateway never
 * sets `authorizer`, so these routes answer 401 there).
 */
const IamAuthorizerContext = z.object({ accountId: z.string().min(1), userArn: z.string().min(1) });

/**
 * Whether `userArn` is a session of the runner role (`RUNNER_ROLE_NAME`, set by the CDK app when
 * the stack has a runner role): `arn:<partition>:sts::<account>:assumed-role/<role>/<session>`.
 * Without the setting no session qualifies.
 */
export function isRunnerSession(userArn: string, roleName = process.env.RUNNER_ROLE_NAME): boolean {
  if (!roleName) return false;
  const match = /^arn:[a-z-]+:sts::\d{12}:assumed-role\/([^/]+)\/[^/]+$/.exec(userArn);
  return match?.[1] === roleName;
}

/** Stands where a token's hash goes: no sha256 is 64 `-`, and this principal is never stored. */
const NO_TOKEN = '-'.repeat(64);

/**
 * The caller of an IAM-authorized runner route: host principal `host:<id>` of the path's `{id}`,
 * with the rights of that host's bearer credential (access.ts assertMayCall). Trusting the path
 * is sound because IAM itself allowed it: the runner policy (infra/runner-access.ts) lets a
 * runner invoke `/runner/hosts/<id>...` only for the `<id>` that is its certificate's CN, so a
 * runner can name no host but its own. 401 without the IAM context: never a bearer token here.
 */
export function iamHostPrincipal(
  event: Pick<APIGatewayProxyEventV2, 'requestContext'>,
  params: Record<string, string>,
): User {
  const authorizer = (event.requestContext as { authorizer?: { iam?: unknown } } | undefined)?.authorizer;
  const iam = IamAuthorizerContext.safeParse(authorizer?.iam);
  if (!iam.success) {
    throw new Unauthorized(
      "this route takes only requests signed with the runner's IAM Roles Anywhere session (SigV4), not a bearer token",
    );
  }
  // IAM let the caller invoke this path; only the runner role's sessions may act as a host
  // (another principal of the account allowed execute-api:Invoke must not).
  if (!isRunnerSession(iam.data.userArn)) {
    throw new Unauthorized('this route takes only sessions of the runner role');
  }
  checkPathParameters(params);
  const hostId = Number(params.id);
  return User.parse({
    name: hostPrincipalName(hostId),
    group: HOSTS_GROUP,
    role: 'host',
    hostId,
    tokenHash: NO_TOKEN,
    createdAt: new Date().toISOString(),
  });
}
