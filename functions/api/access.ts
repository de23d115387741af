/**
 * Who may see and change an object: admins everything; others by the object's Unix-like
 * permission string (`um- g-- o--`: use/manage/admin bits for owner, group, others).
 */
import { Forbidden } from '#core/errors.ts';
import type { User } from '#core/model.ts';

/** An object with an owner, a group and permissions (VM, datastore, image). */
export interface Owned {
  owner: string;
  group: string;
  permissions: string;
}

type Right = 'use' | 'manage';

function allowed(user: User, object: Owned, right: Right): boolean {
  if (user.role === 'admin') return true;
  const bit = right === 'use' ? 0 : 1;
  const letter = right === 'use' ? 'u' : 'm';
  const offset = object.owner === user.name ? 0 : object.group === user.group ? 3 : 6;
  // Manage implies use.
  if (right === 'use' && object.permissions[offset + 1] === 'm') return true;
  return object.permissions[offset + bit] === letter;
}

/** Whether the user may see and use the object. */
export function canUse(user: User, object: Owned): boolean {
  return allowed(user, object, 'use');
}

/** Whether the user may change or delete the object. */
export function canManage(user: User, object: Owned): boolean {
  return allowed(user, object, 'manage');
}

/** 403 unless the user has the right on the object. */
export function assertAllowed(user: User, object: Owned, right: Right, what: string): void {
  if (!allowed(user, object, right)) throw new Forbidden(`user ${user.name} may not ${right} ${what}`);
}

/** Ownership of an object a user creates: theirs, usable and manageable by them only. */
export function ownedBy(user: User): Owned {
  return { owner: user.name, group: user.group, permissions: 'um-------' };
}

/** Only admins may do this (hosts, inventory). */
export function assertAdmin(user: User, what: string): void {
  if (user.role !== 'admin') throw new Forbidden(`only admins may ${what}`);
}
