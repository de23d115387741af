/**
 * User groups (groups table, key `name`). The built-in groups (core/accounts.ts) have no record:
 * they always exist and are never deleted. Each record counts its members, so deleting a group
 * can be a write conditional on `members = 0`.
 */
import { Group, isBuiltinGroup } from '#core/accounts.ts';
import { Table } from './table.ts';

/** The groups repository. */
export const groups = new Table('groups', Group, 'Group', 'name');

/** Whether group `name` exists (built-in, or recorded). */
export async function groupExists(name: string): Promise<boolean> {
  return isBuiltinGroup(name) || (await groups.find(name)) !== undefined;
}
