/**
 * Access checks of the API routes, on top of core/permissions.ts (admins everything; others by
 * the object's `um- g-- o--` permission bits).
 */
import { Forbidden } from '#core/errors.ts';
import type { User } from '#core/model.ts';
import { can, defaultOwnership, type Owned, type Right, requireRight } from '#core/permissions.ts';
import { type ObjectKind, parseActionRights, type RouteRights, routeRights } from '#core/rights.ts';

/** Whether the user may see and use the object. */
export function canUse(user: User, object: Owned): boolean {
  // Managing implies using: an owner with `-m-` still sees what they manage.
  return can(user, object, 'use') || can(user, object, 'manage');
}

/** 403 (`"alice may not manage VM 7"`) unless the user has the right on the object. */
export function assertAllowed(user: User, object: Owned, right: Right, what: string): void {
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

let table: Record<string, RouteRights> | undefined;

/** This deployment's rights table (core/rights.ts with its `ACTION_RIGHTS` setting), read once. */
export function rightsTable(): Record<string, RouteRights> {
  table ??= routeRights(parseActionRights(process.env.ACTION_RIGHTS));
  return table;
}

/** Forget the table read from the environment (tests that change `ACTION_RIGHTS`). */
export function resetRightsTable(): void {
  table = undefined;
}

/** The right `routeKey` needs on a `kind` object, from the rights table; a route without the row is a bug. */
export function neededRight(routeKey: string, kind: ObjectKind): Right {
  const right = rightsTable()[routeKey]?.objects?.[kind];
  if (!right) throw new Error(`rights table: route ${routeKey} has no ${kind} row`);
  return right;
}

const LABEL: Record<ObjectKind, string> = {
  vm: 'VM',
  datastore: 'Datastore',
  image: 'Image',
  job: 'Backup job',
};

/**
 * 403 (`"alice may not admin VM 7"`) unless the caller holds the right the route's row in the
 * rights table asks for on `object`. Every route checks its objects through this.
 */
export function authorize(
  ctx: { user: User; route: string },
  kind: ObjectKind,
  object: Owned & { id: number },
): void {
  assertAllowed(ctx.user, object, neededRight(ctx.route, kind), `${LABEL[kind]} ${object.id}`);
}

/**
 * The route's caller row, checked before the route runs: `admin` rows refuse users with 403,
 * `self` rows a user naming someone else, `member` rows a user naming a group not theirs.
 * (`host`, `enrollment` and `iam` rows are confined by {@link assertMayCall} and the IAM
 * authorizer.)
 */
export function assertCaller(user: User, routeKey: string, params: Record<string, string>): void {
  const row = rightsTable()[routeKey];
  if (!row) throw new Error(`rights table: no row for route ${routeKey}`);
  if (user.role === 'admin') return;
  const action = row.action ?? concrete(routeKey, params);
  if (
    row.caller === 'admin' ||
    (row.caller === 'self' && params.name !== user.name) ||
    (row.caller === 'member' && params.name !== user.group)
  ) {
    throw new Forbidden(`only admins may ${action}`);
  }
}
