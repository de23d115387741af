/**
 * `lifeboat token ...`: a user's API tokens. Create answers the token once (only its sha256 is
 * kept); list shows names, dates and state, never a token or hash; revoke takes effect on the
 * next request (authentication reads the record consistently). A user manages their own tokens;
 * admins anyone's.
 */
import { tokenView } from '#core/accounts.ts';
import { CreateTokenBody, TokenId, TokenListQuery } from '#core/contracts/accounts.ts';
import { parseBody } from '#core/contracts/api.ts';
import { Forbidden, NotFound, ValidationError } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { log } from '#platform/log.ts';
import { purgeAfter, tokenById, tokenRecord, tokens, tokensOf } from '../../repo/tokens.ts';
import { hashToken, newToken } from '../auth.ts';
import { items, json, parseQuery, type RouteHandler } from '../http.ts';
import { userNamed } from './accounts-shared.ts';

/** 403 unless `caller` is `name` or an admin. */
function assertSelfOrAdmin(caller: User, name: string, what: string): void {
  if (caller.name !== name && caller.role !== 'admin') {
    throw new Forbidden(`only admins may ${what} of other users (you are ${caller.name})`);
  }
}

/** `POST /tokens {name?, expires?, user?}`: 201 with the token, shown only here. */
const create: RouteHandler = async (ctx) => {
  const body = parseBody(CreateTokenBody, ctx.body);
  const name = body.user ?? ctx.user.name;
  assertSelfOrAdmin(ctx.user, name, 'create tokens');
  const owner = name === ctx.user.name ? ctx.user : await userNamed(name);
  const token = newToken('lb');
  const record = tokenRecord({
    hash: hashToken(token),
    user: owner.name,
    uid: owner.uid,
    name: body.name,
    now: new Date(),
    expiresInSeconds: body.expires,
  });
  await tokens.put(record, { expression: 'attribute_not_exists(#h)', names: { '#h': 'hash' } });
  log('info', 'token created', { user: owner.name, tokenId: record.id, by: ctx.user.name });
  return json({ ...tokenView(record, Date.now()), token }, 201);
};

/** `GET /tokens?user=NAME`: the caller's tokens, or (admins) another user's. */
const list: RouteHandler = async (ctx) => {
  const query = parseQuery(TokenListQuery, ctx);
  const name = query.user ?? ctx.user.name;
  assertSelfOrAdmin(ctx.user, name, 'list tokens');
  const now = Date.now();
  return items((await tokensOf(name)).map((t) => tokenView(t, now)));
};

/** `DELETE /tokens/{tokenId}`: revokes it (idempotent); answers the token's record. */
const revoke: RouteHandler = async (ctx) => {
  const id = TokenId.safeParse(ctx.params.tokenId);
  if (!id.success) throw new ValidationError(`tokenId: ${id.error.issues[0]?.message ?? 'invalid'}`);
  const token = await tokenById(id.data);
  if (!token) throw new NotFound(`token ${id.data} does not exist`);
  assertSelfOrAdmin(ctx.user, token.user, 'revoke tokens');
  if (token.revokedAt) return json(tokenView(token, Date.now()));
  const now = Date.now();
  const revoked = await tokens
    .update(
      token.hash,
      { revokedAt: new Date(now).toISOString(), purgeAt: purgeAfter(now) },
      { condition: { expression: 'attribute_not_exists(#r)', names: { '#r': 'revokedAt' } } },
    )
    .catch(async (err: unknown) => {
      // Revoked meanwhile by another request: the same outcome.
      const again = await tokens.find(token.hash);
      if (again?.revokedAt) return again;
      throw err;
    });
  log('info', 'token revoked', { user: token.user, tokenId: token.id, by: ctx.user.name });
  return json(tokenView(revoked, now));
};

/** Token routes by route key. */
export const tokenRoutes: Record<string, RouteHandler> = {
  'GET /tokens': list,
  'POST /tokens': create,
  'DELETE /tokens/{tokenId}': revoke,
};
