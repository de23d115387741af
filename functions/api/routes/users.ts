/**
 * `lifeboat user ...`: create, list, show, delete, and move a user to another group (admins;
 * a user may show themselves), and `GET /me`: who the caller is. A new user gets a first token,
 * answered once. Names are unique by a conditional write, and group member counts move in the
 * same transaction as the user, so a group with members cannot be deleted under a racing
 * `user create` or `chgrp`.
 */
import { ScanCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ADMIN_GROUP, DEFAULT_GROUP } from '#core/accounts.ts';
import { CreateUserBody, UpdateUserBody } from '#core/contracts/accounts.ts';
import { parseBody } from '#core/contracts/api.ts';
import { Conflict, NotFound } from '#core/errors.ts';
import { User } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { datastores } from '../../repo/datastores.ts';
import { images } from '../../repo/images.ts';
import { jobs } from '../../repo/jobs.ts';
import { cancellationCodes } from '../../repo/table.ts';
import { newUid, tokenRecord, tokens, tokensOf } from '../../repo/tokens.ts';
import { users } from '../../repo/users.ts';
import { vms } from '../../repo/vms.ts';
import { hashToken, newToken } from '../auth.ts';
import { items, json, type RouteHandler } from '../http.ts';
import { allUsers, memberCount, userNamed, userNameParam, userView } from './accounts-shared.ts';

/** `POST /users {name, group?, admin?}` (admins): 201 with the user and its first token, once. */
const create: RouteHandler = async (ctx) => {
  const body = parseBody(CreateUserBody, ctx.body);
  const group = body.group ?? (body.admin ? ADMIN_GROUP : DEFAULT_GROUP);
  const now = new Date();
  const user = User.parse({
    name: body.name,
    group,
    role: body.admin ? 'admin' : 'user',
    uid: newUid(),
    createdAt: now.toISOString(),
  });
  const token = newToken('lb');
  const record = tokenRecord({ hash: hashToken(token), user: user.name, uid: user.uid, name: 'first', now });
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          // Two creates of one name: one transaction wins, the other fails this condition.
          {
            Put: {
              TableName: users.name,
              Item: user,
              ConditionExpression: 'attribute_not_exists(#n)',
              ExpressionAttributeNames: { '#n': 'name' },
            },
          },
          { Put: { TableName: tokens.name, Item: record } },
          ...memberCount(group, 1),
        ],
      }),
    );
  } catch (err) {
    const codes = cancellationCodes(err);
    if (codes[0] === 'ConditionalCheckFailed') throw new Conflict(`user ${user.name} already exists`);
    if (codes[2] === 'ConditionalCheckFailed') throw new NotFound(`group ${group} does not exist`);
    throw err;
  }
  log('info', 'user created', { user: user.name, group, admin: body.admin, by: ctx.user.name });
  return json({ ...userView(user), token, tokenId: record.id }, 201);
};

/** `GET /users` (admins). */
const list: RouteHandler = async () => items((await allUsers()).map(userView));

/** `GET /users/{name}` (admins, or the user themselves). */
const show: RouteHandler = async (ctx) => {
  const name = userNameParam(ctx.params.name);
  return json(userView(await userNamed(name)));
};

/**
 * `GET /me` (any user): the caller, in the public view of `GET /users/{name}`. The principal the
 * request authenticated as, whether its token is in the tokens table or (older) on the user record.
 */
const me: RouteHandler = async (ctx) => json(userView(ctx.user));

/** The kinds of objects a user may own, as named in a refusal. */
const OWNED_KINDS = [
  { table: vms, label: 'VM' },
  { table: datastores, label: 'datastore' },
  { table: images, label: 'image' },
  { table: jobs, label: 'backup job' },
] as const;

/** How many ids of each kind a refusal names before it says "and N more". */
const NAMED_IDS = 10;

/** What `name` owns: `VM 3, 7; image 12` (empty when nothing). */
async function ownedBy(name: string): Promise<string[]> {
  const found = await Promise.all(
    OWNED_KINDS.map(async ({ table, label }) => {
      const ids: number[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const out = await dynamo().send(
          new ScanCommand({
            TableName: table.name,
            ConsistentRead: true,
            ProjectionExpression: '#i',
            FilterExpression: '#o = :o',
            ExpressionAttributeNames: { '#i': 'id', '#o': 'owner' },
            ExpressionAttributeValues: { ':o': name },
            ExclusiveStartKey: start,
          }),
        );
        for (const item of out.Items ?? []) ids.push(Number(item.id));
        start = out.LastEvaluatedKey;
      } while (start);
      ids.sort((a, b) => a - b);
      const more = ids.length > NAMED_IDS ? ` and ${ids.length - NAMED_IDS} more` : '';
      return ids.length ? `${label} ${ids.slice(0, NAMED_IDS).join(', ')}${more}` : '';
    }),
  );
  return found.filter(Boolean);
}

/**
 * `DELETE /users/{name}` (admins): 204; 409 with what they own when they own anything (VMs,
 * datastores, images, backup jobs: chown or delete those first). Their tokens go with them.
 */
const remove: RouteHandler = async (ctx) => {
  const name = userNameParam(ctx.params.name);
  if (name === ctx.user.name) throw new Conflict('you may not delete yourself: ask another admin');
  const user = await userNamed(name);
  const owned = await ownedBy(name);
  if (owned.length) {
    throw new Conflict(`user ${name} owns ${owned.join('; ')}: chown or delete them first`);
  }
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            // The record read above, not one made again since (another uid) or moved (group).
            Delete: {
              TableName: users.name,
              Key: { name },
              ConditionExpression: user.uid ? '#g = :g AND #u = :u' : '#g = :g AND attribute_not_exists(#u)',
              ExpressionAttributeNames: { '#g': 'group', '#u': 'uid' },
              ExpressionAttributeValues: { ':g': user.group, ...(user.uid ? { ':u': user.uid } : {}) },
            },
          },
          ...memberCount(user.group, -1),
        ],
      }),
    );
  } catch (err) {
    if (cancellationCodes(err).includes('ConditionalCheckFailed')) {
      throw new Conflict(`user ${name} changed while being deleted: try again`);
    }
    throw err;
  }
  // Its tokens already fail (no user); removing them keeps `token list` clean.
  for (const token of await tokensOf(name)) await tokens.delete(token.hash);
  log('info', 'user deleted', { user: name, by: ctx.user.name });
  return { statusCode: 204 };
};

/** `PATCH /users/{name} {group}` (admins): `user chgrp NAME GROUP`; answers the user. */
const update: RouteHandler = async (ctx) => {
  const name = userNameParam(ctx.params.name);
  const body = parseBody(UpdateUserBody, ctx.body);
  const user = await userNamed(name);
  if (user.group === body.group) return json(userView(user));
  const join = memberCount(body.group, 1);
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: users.name,
              Key: { name },
              UpdateExpression: 'SET #g = :new',
              // A racing chgrp moved it already: the counts would go wrong, so this one fails.
              ConditionExpression: '#g = :old',
              ExpressionAttributeNames: { '#g': 'group' },
              ExpressionAttributeValues: { ':new': body.group, ':old': user.group },
            },
          },
          ...join,
          ...memberCount(user.group, -1),
        ],
      }),
    );
  } catch (err) {
    const codes = cancellationCodes(err);
    if (codes[0] === 'ConditionalCheckFailed')
      throw new Conflict(`user ${name} changed meanwhile: try again`);
    if (join.length && codes[1] === 'ConditionalCheckFailed') {
      throw new NotFound(`group ${body.group} does not exist`);
    }
    throw err;
  }
  log('info', 'user moved', { user: name, from: user.group, to: body.group, by: ctx.user.name });
  return json(userView({ ...user, group: body.group }));
};

/** User routes by route key. */
export const userRoutes: Record<string, RouteHandler> = {
  'GET /me': me,
  'GET /users': list,
  'POST /users': create,
  'GET /users/{name}': show,
  'PATCH /users/{name}': update,
  'DELETE /users/{name}': remove,
};
