/**
 * Access rules, as upstream: every object has an owner, a group and nine permission bits
 * (`um-u--u--`: owner use/manage/admin, group use/manage/admin, others use/manage/admin).
 * Admins may do everything; others get the bits of the first class they fall into.
 */
import { Forbidden } from './errors.ts';
import type { User } from './model.ts';

export type Right = 'use' | 'manage' | 'admin';

/** The ownership fields of an object (VM, datastore, image, ...). */
export interface Owned {
  owner: string;
  group: string;
  permissions: string;
}

/** Who is asking: the fields of a User that matter here. */
export type Principal = Pick<User, 'name' | 'group' | 'role'>;

/** Nine permission bits as stored: `um-u--u--` (owner, group, others: use, manage, admin). */
export const PERMISSIONS_PATTERN = /^[u-][m-][a-][u-][m-][a-][u-][m-][a-]$/;

/** New objects: the owner may use and manage them, nobody else (upstream umask 177). */
export const DEFAULT_PERMISSIONS = 'um-------';

const OFFSET: Record<Right, number> = { use: 0, manage: 1, admin: 2 };

/**
 * Whether `user` holds `right` on `object`. The class is owner if the user owns it, else group
 * if the groups match, else others (as in Unix: an owner is not granted the group's bits).
 */
export function can(user: Principal, object: Owned, right: Right): boolean {
  if (user.role === 'admin') return true;
  const base = user.name === object.owner ? 0 : user.group === object.group ? 3 : 6;
  const bit = object.permissions[base + OFFSET[right]];
  return bit !== undefined && bit !== '-';
}

/** Whether `user` may change or delete `object` (admin: all; others: the manage bit of their class). */
export function canManage(user: Principal, object: Owned): boolean {
  return can(user, object, 'manage');
}

/** Throws Forbidden naming the user, the right and the object (`"alice may not manage VM 7"`). */
export function requireRight(user: Principal, object: Owned, right: Right, what: string): void {
  if (!can(user, object, right)) throw new Forbidden(`${user.name} may not ${right} ${what}`);
}

/** Ownership of an object `user` creates. */
export function defaultOwnership(user: Principal): Owned {
  return { owner: user.name, group: user.group, permissions: DEFAULT_PERMISSIONS };
}

/** The rule of an octal permission argument, as `onevm chmod` takes it. */
export const OCTAL_RULE =
  'must be three octal digits (owner, group, others; 4 use, 2 manage, 1 admin), e.g. 640';

/** Whether `text` is three octal digits (`640`). */
export function isOctalPermissions(text: string): boolean {
  return /^[0-7]{3}$/.test(text);
}

/**
 * `640` as the permission string `um-u-----`: one digit per class (owner, group, others), each
 * the sum of 4 (use), 2 (manage) and 1 (admin), as `onevm chmod 640`.
 */
export function permissionsFromOctal(octal: string): string {
  if (!isOctalPermissions(octal)) throw new Error(`permissions: ${OCTAL_RULE}`);
  return [...octal]
    .map((digit) => {
      const n = Number(digit);
      return `${n & 4 ? 'u' : '-'}${n & 2 ? 'm' : '-'}${n & 1 ? 'a' : '-'}`;
    })
    .join('');
}

/** The permission string `um-u-----` as `640`. */
export function permissionsToOctal(permissions: string): string {
  let out = '';
  for (let base = 0; base < 9; base += 3) {
    const bits = permissions.slice(base, base + 3);
    out += String((bits[0] === 'u' ? 4 : 0) + (bits[1] === 'm' ? 2 : 0) + (bits[2] === 'a' ? 1 : 0));
  }
  return out;
}
