/**
 * API tokens (tokens table, keyed by the token's sha256): a user may hold several, each with a
 * name, an optional expiry, a last-used time and a revocation. Authentication reads one by its
 * hash with a single consistent GetItem, so a revocation holds from the next request on.
 */
import { randomBytes } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ApiToken, TOKEN_RECORD_DAYS } from '#core/accounts.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { isConditionFailed, Table } from './table.ts';

/** The tokens repository. */
export const tokens = new Table('tokens', ApiToken, 'Token', 'hash');

/** A new public token id: 16 hex digits, unrelated to the token. */
export function newTokenId(): string {
  return randomBytes(8).toString('hex');
}

/** A new user uid (see User.uid). */
export function newUid(): string {
  return randomBytes(12).toString('hex');
}

/** Epoch seconds at which DynamoDB's TTL may drop a record that stopped working at `ms`. */
export function purgeAfter(ms: number): number {
  return Math.ceil(ms / 1000) + TOKEN_RECORD_DAYS * 86400;
}

/** The record of a token to be written (the caller writes it, alone or in a transaction). */
export function tokenRecord(input: {
  hash: string;
  user: string;
  uid?: string | undefined;
  name: string;
  now: Date;
  expiresInSeconds?: number | undefined;
}): ApiToken {
  const expires =
    input.expiresInSeconds === undefined ? undefined : input.now.getTime() + input.expiresInSeconds * 1000;
  return ApiToken.parse({
    hash: input.hash,
    id: newTokenId(),
    user: input.user,
    ...(input.uid ? { uid: input.uid } : {}),
    name: input.name,
    createdAt: input.now.toISOString(),
    ...(expires !== undefined
      ? { expiresAt: new Date(expires).toISOString(), purgeAt: purgeAfter(expires) }
      : {}),
  });
}

/** A user's tokens, oldest first (the byUser index: it may lag a just-made token). */
export function tokensOf(user: string): Promise<ApiToken[]> {
  return tokens.query('byUser', { expression: '#u = :u', names: { '#u': 'user' }, values: { ':u': user } });
}

/** The token of public id `id`, read again by its hash (the index may lag a revocation). */
export async function tokenById(id: string): Promise<ApiToken | undefined> {
  const [hit] = await tokens.query('byId', {
    expression: '#i = :i',
    names: { '#i': 'id' },
    values: { ':i': id },
  });
  return hit ? tokens.find(hit.hash) : undefined;
}

/** How stale `lastUsed` may get: at most one write per token and minute. */
export const LAST_USED_EVERY_MS = 60_000;

/** When this environment last noted each token's use (by hash): at most one try a minute. */
const touchedHere = new Map<string, number>();
/** Bound on {@link touchedHere}: forgotten all at once past it (one extra write per token). */
const TOUCHED_KEPT = 10_000;

/**
 * Records that the token authenticated a request at `now`, unless it did within the last minute
 * (then no write at all): by the `lastUsed` the caller read, and by this environment's own last
 * try, since the authorizer's cached answer carries a `lastUsed` that only ages (every request
 * after its first minute wrote, and all but one write failed their condition). Conditional, so
 * it never recreates a deleted record nor undoes a revocation; a lost race with another
 * request's update is fine, and a failed write never fails the request.
 */
export async function touchToken(
  token: Pick<ApiToken, 'hash' | 'id' | 'lastUsed'>,
  now: number,
): Promise<void> {
  if (token.lastUsed !== undefined && now - Date.parse(token.lastUsed) < LAST_USED_EVERY_MS) return;
  const tried = touchedHere.get(token.hash);
  if (tried !== undefined && now - tried < LAST_USED_EVERY_MS) return;
  if (touchedHere.size >= TOUCHED_KEPT) touchedHere.clear();
  touchedHere.set(token.hash, now);
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tokens.name,
        Key: { hash: token.hash },
        UpdateExpression: 'SET #l = :now',
        ConditionExpression:
          'attribute_exists(#h) AND attribute_not_exists(#r) AND (attribute_not_exists(#l) OR #l < :cutoff)',
        ExpressionAttributeNames: { '#h': 'hash', '#l': 'lastUsed', '#r': 'revokedAt' },
        ExpressionAttributeValues: {
          ':now': new Date(now).toISOString(),
          ':cutoff': new Date(now - LAST_USED_EVERY_MS).toISOString(),
        },
      }),
    );
  } catch (err) {
    // Bookkeeping only: a throttled write must not fail the request it notes.
    if (!isConditionFailed(err)) {
      log('warn', 'token last use not recorded', { tokenId: token.id, error: (err as Error).name });
    }
  }
}
