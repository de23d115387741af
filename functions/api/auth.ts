/**
 * Bearer-token authentication: the token's sha256 (hex) is looked up in the users table; the
 * token itself is never stored nor logged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Unauthorized } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { enrollmentExpired, isEnrollment, userByTokenHash } from '../repo/users.ts';

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

/** The user owning the request's token; 401 when absent, unknown or an expired enrollment. */
export async function authenticate(headers: Record<string, string | undefined> | undefined): Promise<User> {
  const user = await userByTokenHash(hashToken(bearerToken(headers)));
  if (!user) throw new Unauthorized('invalid token');
  if (isEnrollment(user) && enrollmentExpired(user)) {
    throw new Unauthorized(`enrollment token expired: enroll host "${user.hostName}" again`);
  }
  return user;
}
