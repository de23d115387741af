/**
 * Users, groups and API tokens: the rules of their names, the built-in groups, token lifetimes,
 * and the records of the groups and tokens tables. Pure: no AWS, no clock of its own (callers
 * pass `now`).
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';

/**
 * A user or group name: letters, digits and `._-`, at most 64, starting with a letter or digit.
 * Never `:` nor `/`: host principals (`host:<id>`, `enroll:<name>`) live in the same table, and
 * a name must stay one path segment.
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** What {@link NAME_PATTERN} means, for messages. */
export const NAME_RULE = 'must be 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit';

/**
 * Seconds an answer of the bearer-token authorizer is reused for the same token (API Gateway's
 * `resultsCacheTtl` in AWS, local mode's gateway alike): the most a revoked token, a deleted user
 * or a changed group may lag.
 */
export const AUTHORIZER_CACHE_SECONDS = 60;

/** The built-in group of administrators (OpenNebula's `oneadmin`). */
export const ADMIN_GROUP = 'admin';

/** The built-in group new users join unless told otherwise (OpenNebula's `users`). */
export const DEFAULT_GROUP = 'users';

/** Groups that always exist and cannot be deleted. */
export const BUILTIN_GROUPS: readonly string[] = [ADMIN_GROUP, DEFAULT_GROUP];

/** The host principals' group: no user may join it and no group may take its name. */
export const RESERVED_GROUP = 'hosts';

/** A user's name. */
export const UserName = z.string().regex(NAME_PATTERN, NAME_RULE);

/** A group's name (never the host principals' `hosts`). */
export const GroupName = z
  .string()
  .regex(NAME_PATTERN, NAME_RULE)
  .refine((name) => name !== RESERVED_GROUP, `"${RESERVED_GROUP}" is reserved for host principals`);

/** Whether `group` is one of {@link BUILTIN_GROUPS}. */
export function isBuiltinGroup(group: string): boolean {
  return BUILTIN_GROUPS.includes(group);
}

/** A group of the groups table. Built-in groups have no record. */
export const Group = z.object({
  name: z.string().min(1),
  createdAt: z.string(),
  /** How many users are in it, kept by the same transactions that move users, so a delete can
   * be conditional on `members = 0`. */
  members: z.number().int().nonnegative().default(0),
});
export type Group = z.infer<typeof Group>;

/** An API token's record (tokens table, keyed by the token's sha256). The token is never stored. */
export const ApiToken = z.object({
  /** sha256 hex of the token: what authentication reads it by (one GetItem). */
  hash: z.string().length(64),
  /** Public id (`token revoke ID`): random, unrelated to the token. */
  id: z.string().min(1),
  /** The user it authenticates as. */
  user: z.string().min(1),
  /** The user's `uid` when it was made: a user deleted and created again does not inherit it. */
  uid: z.string().optional(),
  name: z.string(),
  createdAt: z.string(),
  /** When it stops working (ISO-8601); absent: never. */
  expiresAt: z.string().optional(),
  /** Last authenticated request, at most once a minute. */
  lastUsed: z.string().optional(),
  revokedAt: z.string().optional(),
  /** Epoch seconds after which DynamoDB's TTL removes a revoked or expired record. */
  purgeAt: z.number().int().optional(),
});
export type ApiToken = z.infer<typeof ApiToken>;

/** A token as listed: never its hash. */
export type TokenView = Omit<ApiToken, 'hash' | 'uid' | 'purgeAt'> & {
  state: 'active' | 'expired' | 'revoked';
};

/** The listed form of a token at `now`. */
export function tokenView(token: ApiToken, now: number): TokenView {
  const { hash: _hash, uid: _uid, purgeAt: _purge, ...shown } = token;
  return { ...shown, state: tokenState(token, now) };
}

/** Whether a token works at `now` (epoch ms). */
export function tokenState(
  token: Pick<ApiToken, 'expiresAt' | 'revokedAt'>,
  now: number,
): TokenView['state'] {
  if (token.revokedAt !== undefined) return 'revoked';
  if (token.expiresAt !== undefined && !(Date.parse(token.expiresAt) > now)) return 'expired';
  return 'active';
}

/** How long an expired or revoked token's record is kept for `token list` before TTL removes it. */
export const TOKEN_RECORD_DAYS = 30;

/** Longest lifetime a token may be given: 5 years. */
export const MAX_TOKEN_SECONDS = 5 * 366 * 86400;

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/**
 * A token lifetime (`90s`, `15m`, `12h`, `30d`, `4w`) in seconds, or undefined for `never`.
 * ValidationError naming `field` for anything else, zero, or more than 5 years.
 */
export function parseLifetime(text: string, field = 'expires'): number | undefined {
  if (text === 'never') return undefined;
  const match = /^(\d{1,7})([smhdw])$/.exec(text);
  const seconds = match ? Number(match[1]) * (UNIT_SECONDS[match[2] ?? ''] ?? 0) : 0;
  if (!match || seconds <= 0 || seconds > MAX_TOKEN_SECONDS) {
    throw new ValidationError(
      `${field}: must be a positive number with a unit s, m, h, d or w (e.g. 30d), at most 5 years, or "never" (got ${JSON.stringify(text.slice(0, 40))})`,
    );
  }
  return seconds;
}
