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

/**
 * Routes a host principal may call, for its own host id only: with its bearer credential, or
 * signed with its IAM session (the `/runner/...` routes).
 */
const HOST_ROUTES: ReadonlySet<string> = new Set([
  'GET /hosts/{id}',
  'PUT /hosts/{id}/inventory',
  'GET /runner/hosts/{id}',
  'PUT /runner/hosts/{id}/inventory',
  'PUT /runner/hosts/{id}/key',
]);

/** The one route an enrollment token may call. */
export const REGISTER_ROUTE = 'POST /hosts/register';

/** `PUT /hosts/{id}/inventory` with the request's own parameters (`PUT /hosts/4/inventory`). */
function concrete(routeKey: string, params: Record<string, string>): string {
  return routeKey.replace(/\{(\w+)\}/g, (whole, name: string) => (params[name] ?? whole).slice(0, 40));
}

/**
 * The runner's confinement, checked for every request before its route runs: a host principal
 * may only read its own host and report its own inventory, an enrollment token may only
 * register its host; anything else is 403 naming the host. Users and admins pass through to the
 * routes' own checks.
 */
export function assertMayCall(user: User, routeKey: string, params: Record<string, string>): void {
  if (user.role !== 'host') return;
  if (user.hostId === undefined) {
    if (routeKey === REGISTER_ROUTE) return;
    throw new Forbidden(
      `an enrollment token for host "${user.hostName ?? '?'}" may only register it, not ${concrete(routeKey, params)}`,
    );
  }
  if (HOST_ROUTES.has(routeKey) && params.id === String(user.hostId)) return;
  throw new Forbidden(`host ${user.hostId} may not ${concrete(routeKey, params)}`);
}

/**
 * Only this host's own runner, or an admin (tests and simulated hosts), may act for host
 * `hostId`; users never.
 */
export function assertHostOrAdmin(user: User, hostId: number, what: string): void {
  if (user.role === 'admin') return;
  if (user.role === 'host' && user.hostId === hostId) return;
  if (user.role === 'host')
    throw new Forbidden(`host ${user.hostId ?? '?'} may not ${what} of host ${hostId}`);
  throw new Forbidden(`only admins and host ${hostId} itself may ${what}`);
}
