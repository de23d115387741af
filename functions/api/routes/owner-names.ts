/**
 * Whether the names an object is given to exist: users (never a host principal) and groups
 * objects may belong to. For `PATCH /hosts/{id}` (the default owner) and the inventory's
 * first-sight owner.
 */
import { isBuiltinGroup, RESERVED_GROUP } from '#core/accounts.ts';
import { NotFound } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { groupExists } from '../../repo/groups.ts';
import { users } from '../../repo/users.ts';

/** The user called `name`, if it is one (a host principal is not). */
export async function findOwner(name: string): Promise<User | undefined> {
  const user = await users.find(name);
  return user && user.role !== 'host' ? user : undefined;
}

/** Whether `group` exists and may own objects: a built-in one or one of the groups table, never `hosts`. */
export async function isOwnerGroup(group: string): Promise<boolean> {
  return group !== RESERVED_GROUP && (isBuiltinGroup(group) || (await groupExists(group)));
}

/** 404 unless `name` is a user and `group`, if given, a group objects may belong to. */
export async function assertOwnerExists(name: string, group?: string): Promise<void> {
  if (!(await findOwner(name))) throw new NotFound(`User ${name} does not exist`);
  if (group !== undefined && !(await isOwnerGroup(group)))
    throw new NotFound(`Group ${group} does not exist`);
}
