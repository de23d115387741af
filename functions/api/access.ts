/**
 * Access checks of the API routes, on top of core/permissions.ts (admins everything; others by
 * the object's `um- g-- o--` permission bits).
 */
import { Forbidden } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { can, defaultOwnership, type Owned, requireRight } from '#core/permissions.ts';

/** Whether the user may see and use the object. */
export function canUse(user: User, object: Owned): boolean {
  // Managing implies using: an owner with `-m-` still sees what they manage.
  return can(user, object, 'use') || can(user, object, 'manage');
}

/** 403 (`"alice may not manage VM 7"`) unless the user has the right on the object. */
export function assertAllowed(user: User, object: Owned, right: 'use' | 'manage', what: string): void {
  if (right === 'use' && canUse(user, object)) return;
  requireRight(user, object, right, what);
}

/** Ownership of an object a user creates. */
export function ownedBy(user: User): Owned {
  return defaultOwnership(user);
}

/** Only admins may do this (hosts, inventory). */
export function assertAdmin(user: User, what: string): void {
  if (user.role !== 'admin') throw new Forbidden(`only admins may ${what}`);
}
