/**
 * What the user, group and token routes share: the public view of a user, name checks of path
 * parameters, and the transaction pieces that keep a group's member count right.
 */
import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { GroupName, isBuiltinGroup, UserName } from '#core/accounts.ts';
import { NotFound, ValidationError } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { groups } from '../../repo/groups.ts';
import { users } from '../../repo/users.ts';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** A user as the API answers it: never a token nor a hash. */
export interface UserView {
  name: string;
  group: string;
  admin: boolean;
  createdAt: string;
}

/** The public view of a user record. */
export function userView(user: User): UserView {
  return { name: user.name, group: user.group, admin: user.role === 'admin', createdAt: user.createdAt };
}

/** A path parameter that must be a user name; 400 naming it otherwise. */
export function userNameParam(raw: string | undefined): string {
  const parsed = UserName.safeParse(raw ?? '');
  if (!parsed.success) throw new ValidationError(`name: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** A path parameter that must be a group name; 400 naming it otherwise. */
export function groupNameParam(raw: string | undefined): string {
  const parsed = GroupName.safeParse(raw ?? '');
  if (!parsed.success) throw new ValidationError(`name: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** The user (never a host principal) called `name`; 404 otherwise. */
export async function userNamed(name: string): Promise<User> {
  const user = await users.find(name);
  if (!user || user.role === 'host') throw new NotFound(`user ${name} does not exist`);
  return user;
}

/** Every user (host principals left out), by name. */
export async function allUsers(): Promise<User[]> {
  const list = await users.list({
    expression: '#r <> :h',
    names: { '#r': 'role' },
    values: { ':h': 'host' },
  });
  return list.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The transaction item that adds `delta` to group `group`'s member count, on the condition that
 * the group exists; none for a built-in group (it has no record and always exists).
 */
export function memberCount(group: string, delta: 1 | -1): TransactItem[] {
  if (isBuiltinGroup(group)) return [];
  return [
    {
      Update: {
        TableName: groups.name,
        Key: { name: group },
        UpdateExpression: 'SET #m = if_not_exists(#m, :zero) + :d',
        ConditionExpression: 'attribute_exists(#n)',
        ExpressionAttributeNames: { '#m': 'members', '#n': 'name' },
        ExpressionAttributeValues: { ':d': delta, ':zero': 0 },
      },
    },
  ];
}
