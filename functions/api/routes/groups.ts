/**
 * `lifeboat group ...` (admins): create, list, show, delete. The built-in groups (`admin`,
 * `users`) always exist and cannot be deleted; a group with members cannot be deleted either:
 * the delete is conditional on the member count the user routes keep, so a racing
 * `user create --group` cannot leave a user in a deleted group.
 */
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { BUILTIN_GROUPS, isBuiltinGroup } from '#core/accounts.ts';
import { CreateGroupBody } from '#core/contracts/accounts.ts';
import { parseBody } from '#core/contracts/api.ts';
import { Conflict, NotFound } from '#core/errors.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { groups } from '../../repo/groups.ts';
import { isConditionFailed } from '../../repo/table.ts';
import { items, json, type RouteHandler } from '../http.ts';
import { allUsers, groupNameParam } from './accounts-shared.ts';

/** A group as the API answers it. */
interface GroupView {
  name: string;
  builtin: boolean;
  createdAt?: string;
  /** Its users' names. */
  members: string[];
}

/** `POST /groups {name}` (admins): 201; 409 when it exists. */
const create: RouteHandler = async (ctx) => {
  const body = parseBody(CreateGroupBody, ctx.body);
  if (isBuiltinGroup(body.name)) throw new Conflict(`group ${body.name} already exists (built in)`);
  try {
    const group = await groups.put(
      { name: body.name, createdAt: new Date().toISOString(), members: 0 },
      { expression: 'attribute_not_exists(#n)', names: { '#n': 'name' } },
    );
    log('info', 'group created', { group: group.name, by: ctx.user.name });
    return json({ name: group.name, builtin: false, createdAt: group.createdAt, members: [] }, 201);
  } catch (err) {
    if (isConditionFailed(err)) throw new Conflict(`group ${body.name} already exists`);
    throw err;
  }
};

/** Every group with its members: the built-in ones first. */
async function allGroups(): Promise<GroupView[]> {
  const [records, people] = await Promise.all([groups.list(), allUsers()]);
  const membersOf = (name: string) => people.filter((u) => u.group === name).map((u) => u.name);
  return [
    ...BUILTIN_GROUPS.map((name) => ({ name, builtin: true, members: membersOf(name) })),
    ...records
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((g) => ({ name: g.name, builtin: false, createdAt: g.createdAt, members: membersOf(g.name) })),
  ];
}

/** `GET /groups` (admins). */
const list: RouteHandler = async () => items(await allGroups());

/** `GET /groups/{name}` (admins). */
const show: RouteHandler = async (ctx) => {
  const name = groupNameParam(ctx.params.name);
  const found = (await allGroups()).find((g) => g.name === name);
  if (!found) throw new NotFound(`group ${name} does not exist`);
  return json(found);
};

/** `DELETE /groups/{name}` (admins): 204; 409 for a built-in group or one with members. */
const remove: RouteHandler = async (ctx) => {
  const name = groupNameParam(ctx.params.name);
  if (isBuiltinGroup(name)) throw new Conflict(`group ${name} is built in and cannot be deleted`);
  try {
    await dynamo().send(
      new DeleteCommand({
        TableName: groups.name,
        Key: { name },
        ConditionExpression: 'attribute_exists(#n) AND (attribute_not_exists(#m) OR #m = :zero)',
        ExpressionAttributeNames: { '#n': 'name', '#m': 'members' },
        ExpressionAttributeValues: { ':zero': 0 },
      }),
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    const found = (await allGroups()).find((g) => g.name === name);
    if (!found) throw new NotFound(`group ${name} does not exist`);
    throw new Conflict(
      `group ${name} has members: ${found.members.slice(0, 20).join(', ') || '(joining now)'}; move them (lifeboat user chgrp) or delete them first`,
    );
  }
  log('info', 'group deleted', { group: name, by: ctx.user.name });
  return { statusCode: 204 };
};

/** Group routes by route key. */
export const groupRoutes: Record<string, RouteHandler> = {
  'GET /groups': list,
  'POST /groups': create,
  'GET /groups/{name}': show,
  'DELETE /groups/{name}': remove,
};
