/**
 * Bearer-token authentication: the token's sha256 (hex) is looked up in the users table; the
 * token itself is never stored nor logged.
 */
import { createHash } from 'node:crypto';
import { Unauthorized } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { userByTokenHash } from '../repo/users.ts';

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

/** The user owning the request's token; 401 when absent or unknown. */
export async function authenticate(headers: Record<string, string | undefined> | undefined): Promise<User> {
  const user = await userByTokenHash(hashToken(bearerToken(headers)));
  if (!user) throw new Unauthorized('invalid token');
  return user;
}
