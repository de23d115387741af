/**
 * Request bodies and queries of the user, group and token routes (functions/api/routes/users.ts,
 * groups.ts, tokens.ts), validated with {@link parseBody}: a bad field answers 400 naming it.
 */
import { z } from 'zod';
import { GroupName, parseLifetime, UserName } from '../accounts.ts';

/** `POST /users`: a new user, in group `group` (default `users`, or `admin` with `admin`). */
export const CreateUserBody = z.strictObject({
  name: UserName,
  group: GroupName.optional(),
  admin: z.boolean().default(false),
});
export type CreateUserBody = z.infer<typeof CreateUserBody>;

/** `PATCH /users/{name}`: `user chgrp NAME GROUP`. */
export const UpdateUserBody = z.strictObject({ group: GroupName });
export type UpdateUserBody = z.infer<typeof UpdateUserBody>;

/** `POST /groups`. */
export const CreateGroupBody = z.strictObject({ name: GroupName });
export type CreateGroupBody = z.infer<typeof CreateGroupBody>;

/** A lifetime such as `30d` (core/accounts.ts parseLifetime): seconds, or undefined for never. */
const Lifetime = z.string().transform((text, ctx) => {
  try {
    return parseLifetime(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^expires: /, '') });
    return z.NEVER;
  }
});

/** `POST /tokens`: a new token for the caller, or (admins) for `user`. */
export const CreateTokenBody = z.strictObject({
  name: z
    .string()
    .max(64)
    .regex(/^[\x20-\x7e]*$/, 'must be printable ASCII')
    .default(''),
  expires: Lifetime.optional(),
  user: UserName.optional(),
});
export type CreateTokenBody = z.infer<typeof CreateTokenBody>;

/** `GET /tokens?user=NAME`. */
export const TokenListQuery = z.strictObject({ user: UserName.optional() });
export type TokenListQuery = z.infer<typeof TokenListQuery>;

/** The `{tokenId}` of `DELETE /tokens/{tokenId}`. */
export const TokenId = z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 hex digits (see lifeboat token list)');

/**
 * `PUT /users/{name}/quota`, `PUT /groups/{name}/quota`: limits for one datastore (`datastoreId`)
 * or, without it, for all datastores together; `pairs` as `SIZE=MiB IMAGES=N` (-1 unlimited,
 * core/quota.ts parseQuotaPairs).
 */
export const SetQuotaBody = z.strictObject({
  datastoreId: z.number().int().nonnegative().optional(),
  pairs: z.record(z.string(), z.union([z.string(), z.number()])),
});
export type SetQuotaBody = z.infer<typeof SetQuotaBody>;
