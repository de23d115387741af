/**
 * Which right each action of the API needs: one row per route, in one place, as OpenNebula keeps
 * its `VM_ADMIN_ACTIONS`. A row says who may call the route at all (`caller`) and, for each kind
 * of object the route acts on, the right the caller needs on it (`objects`). Routes look their
 * rights up here (functions/api/access.ts) instead of naming them, and the authorization matrix
 * test is generated from these rows and the route table.
 *
 * A deployment may change the right an object row asks for (`use`, `manage` or `admin`; never
 * drop a row or add one): {@link routeRights} with the `ACTION_RIGHTS` setting, for example
 * `{"POST /vms/{id}/backup": {"vm": "manage"}}` to let VM managers start one-shot backups.
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';
import type { Right } from './permissions.ts';

/** The kinds of owned objects a route may act on. */
export type ObjectKind = 'vm' | 'datastore' | 'image' | 'job';

/**
 * Who may call a route at all, before any object is looked at:
 * - `user`: any authenticated user (admins included); the objects' rows then decide;
 * - `admin`: admins only;
 * - `self`: the user the path names (`{name}`) or an admin;
 * - `member`: a member of the group the path names (`{name}`) or an admin;
 * - `requester`: any user, but the route acts only on what the caller made (their execution,
 *   their token; another's is answered as absent or refused), admins on anything;
 * - `host`: a host's runner for its own host id (`{id}`), or an admin;
 * - `enrollment`: an enrollment token (registration);
 * - `iam`: a runner signed with its IAM session for its own host (API Gateway checks the signature);
 * - `anyone`: no authentication at all (the route holds no data: the API's own description).
 */
export type Caller =
  | 'user'
  | 'admin'
  | 'self'
  | 'member'
  | 'requester'
  | 'host'
  | 'enrollment'
  | 'iam'
  | 'anyone';

/** The rights of one route. */
export interface RouteRights {
  caller: Caller;
  /** The right needed on each object the route acts on. */
  objects?: Partial<Record<ObjectKind, Right>>;
  /** When a row applies only in some cases, or a rule beyond the bits holds: said in words. */
  note?: string;
  /** What an `admin`, `self` or `member` route does, for its refusal (`only admins may list users`). */
  action?: string;
}

const user = (objects?: Partial<Record<ObjectKind, Right>>, note?: string): RouteRights => ({
  caller: 'user',
  ...(objects && { objects }),
  ...(note && { note }),
});
const admin = (action: string): RouteRights => ({ caller: 'admin', action });

/** The default rights, by API Gateway route key. Every route of the API has its row. */
export const DEFAULT_ROUTE_RIGHTS: Readonly<Record<string, RouteRights>> = {
  'GET /hosts': user(),
  'POST /hosts': admin('register hosts'),
  'POST /hosts/enroll': admin('enroll hosts'),
  'POST /hosts/register': { caller: 'enrollment' },
  'GET /hosts/{id}': { caller: 'user', note: 'also the host itself' },
  'PATCH /hosts/{id}': admin('change hosts'),
  'DELETE /hosts/{id}': admin('delete hosts'),
  'PUT /hosts/{id}/inventory': { caller: 'host' },
  'GET /vms': user(undefined, 'lists the VMs the caller may use'),
  'GET /vms/{id}': user({ vm: 'use' }),
  'DELETE /vms/{id}': user({ vm: 'manage' }),
  'GET /vms/{id}/backup-config': user({ vm: 'use' }),
  'PUT /vms/{id}/backup-config': user({ vm: 'manage' }),
  // The seed: "Backup is added as VM_ADMIN_ACTIONS... Regular users need to use the batch
  // interface (scheduled actions, backup jobs) or request specific permissions".
  'POST /vms/{id}/backup': user({ vm: 'admin', datastore: 'use' }),
  'PUT /vms/{id}/owner': user(
    { vm: 'manage' },
    'a new owner: admins only; a new group: one the caller is in',
  ),
  'PUT /vms/{id}/permissions': user({ vm: 'manage' }, 'changing an admin bit needs admin on the object'),
  'GET /datastores': user(undefined, 'lists the datastores the caller may use'),
  'POST /datastores': admin('create datastores'),
  'GET /datastores/{id}': user({ datastore: 'use' }),
  'PATCH /datastores/{id}': admin('change datastores'),
  'DELETE /datastores/{id}': admin('delete datastores'),
  'PUT /datastores/{id}/owner': admin('change the owner of datastores'),
  'PUT /datastores/{id}/permissions': admin('change the permissions of datastores'),
  // Measuring changes nothing but the figures; one already waiting in the queue is answered.
  'POST /datastores/{id}/monitor': user({ datastore: 'use' }),
  'GET /datastores/{id}/capacity': user({ datastore: 'use' }),
  // A datastore's scheduled verify reads back every READY image it holds, whoever owns them
  // (the results land on the images): whoever manages the datastore may schedule it.
  'GET /datastores/{id}/schedules': user({ datastore: 'use' }),
  'POST /datastores/{id}/schedules': user({ datastore: 'manage' }),
  'DELETE /datastores/{id}/schedules/{schedId}': user({ datastore: 'manage' }),
  // Writes images (owned by their VM's owner, or the admin) from what the datastore holds.
  'POST /datastores/{id}/import': admin('import the images a datastore holds'),
  'GET /images': user(undefined, 'lists the images the caller may use'),
  'GET /images/{id}': user({ image: 'use' }),
  'DELETE /images/{id}': user({ image: 'manage' }),
  'PUT /images/{id}/owner': user(
    { image: 'manage' },
    'a new owner: admins only; a new group: one the caller is in',
  ),
  'PUT /images/{id}/permissions': user(
    { image: 'manage' },
    'changing an admin bit needs admin on the object',
  ),
  'POST /images/{id}/restore': user(
    { image: 'use', vm: 'admin' },
    'the VM row applies to an in-place restore only; naming a host is admin-only',
  ),
  'POST /images/{id}/verify': user(
    { image: 'use' },
    'naming a host is admin-only; `restore: true` starts a drill with the same rights',
  ),
  'GET /drills': user(undefined, 'lists the drills of images the caller may use (admins: all)'),
  'GET /drills/{id}': user({ image: 'use' }, 'a drill of an image since deleted: admins only'),
  'POST /downloads': user({ image: 'use', datastore: 'use' }, 'naming a host is admin-only'),
  'GET /executions': user(undefined, 'lists the caller own executions (admins: all)'),
  'GET /executions/{id}': { caller: 'requester', note: "another's execution is answered as absent" },
  // Whoever may act on the VM may stop what runs on it (a schedule's or a job's backup included).
  'POST /executions/{id}/cancel': user(
    { vm: 'manage' },
    "its requester may always; without a VM (or whose VM is gone) no one else: another's is answered as absent",
  ),
  'GET /config': user(),
  'GET /vms/{id}/schedules': user({ vm: 'use' }),
  'POST /vms/{id}/schedules': user({ vm: 'manage', datastore: 'use' }),
  'DELETE /vms/{id}/schedules/{schedId}': user({ vm: 'manage' }),
  'GET /jobs': user(undefined, 'lists the jobs the caller may use'),
  'POST /jobs': user({ vm: 'manage', datastore: 'use' }, 'the VM row applies to every VM of the job'),
  'GET /jobs/{id}': user({ job: 'use' }),
  'PATCH /jobs/{id}': user(
    { job: 'manage', vm: 'manage', datastore: 'use' },
    'VMs and datastore when changed',
  ),
  'DELETE /jobs/{id}': user({ job: 'manage' }),
  'PUT /jobs/{id}/owner': user(
    { job: 'manage' },
    'a new owner: admins only; a new group: one the caller is in',
  ),
  'PUT /jobs/{id}/permissions': user({ job: 'manage' }, 'changing an admin bit needs admin on the object'),
  'POST /jobs/{id}/backup': user({ job: 'manage' }),
  'POST /jobs/{id}/retry': user({ job: 'manage' }),
  'GET /jobs/{id}/schedules': user({ job: 'use' }),
  'POST /jobs/{id}/schedules': user(
    { job: 'manage', datastore: 'use' },
    'the datastore row when one is named',
  ),
  'DELETE /jobs/{id}/schedules/{schedId}': user({ job: 'manage' }),
  'GET /me': user(undefined, 'the caller themself'),
  'GET /users': admin('list users'),
  'POST /users': admin('create users'),
  'GET /users/{name}': { caller: 'self', action: 'show other users' },
  'PATCH /users/{name}': admin('change users'),
  'DELETE /users/{name}': admin('delete users'),
  'GET /groups': admin('list groups'),
  'POST /groups': admin('create groups'),
  'GET /groups/{name}': admin('show groups'),
  'DELETE /groups/{name}': admin('delete groups'),
  'GET /users/{name}/quota': { caller: 'self', action: "read other users' quotas" },
  'PUT /users/{name}/quota': admin('set quotas'),
  'GET /groups/{name}/quota': { caller: 'member', action: "read other groups' quotas" },
  'PUT /groups/{name}/quota': admin('set quotas'),
  'GET /tokens': user(undefined, 'the caller own tokens (admins: any user)'),
  'POST /tokens': user(undefined, 'for the caller (admins: any user)'),
  'DELETE /tokens/{tokenId}': { caller: 'requester' },
  'GET /audit': admin('read the audit trail'),
  'GET /stats': user(undefined, 'figures of what the caller may use (admins: everything)'),
  'GET /openapi.json': { caller: 'anyone', note: 'the OpenAPI document: schemas only, no stored value' },
  'GET /runner/hosts/{id}': { caller: 'iam' },
  'PUT /runner/hosts/{id}/inventory': { caller: 'iam' },
  'PUT /runner/hosts/{id}/key': { caller: 'iam' },
};

const RightName = z.enum(['use', 'manage', 'admin']);

/** The `ACTION_RIGHTS` setting: per route key, the right each object row asks for instead. */
export const ActionRights = z.record(
  z.string(),
  z.strictObject({
    vm: RightName.optional(),
    datastore: RightName.optional(),
    image: RightName.optional(),
    job: RightName.optional(),
  }),
);
export type ActionRights = z.infer<typeof ActionRights>;

/**
 * The rights table of a deployment: the defaults with `overrides` applied. An override may only
 * change the right of an object row the route has (a typo in a route key or a row the route does
 * not have would silently change nothing, so it is refused).
 */
export function routeRights(overrides: ActionRights = {}): Record<string, RouteRights> {
  const table: Record<string, RouteRights> = { ...DEFAULT_ROUTE_RIGHTS };
  for (const [key, rows] of Object.entries(overrides)) {
    const base = table[key];
    if (!base) throw new ValidationError(`ACTION_RIGHTS: no route ${JSON.stringify(key)}`);
    const objects = { ...base.objects };
    for (const [kind, right] of Object.entries(rows) as [ObjectKind, Right | undefined][]) {
      if (right === undefined) continue;
      if (!objects[kind]) {
        throw new ValidationError(`ACTION_RIGHTS: route ${key} has no ${kind} row to change`);
      }
      objects[kind] = right;
    }
    table[key] = { ...base, objects };
  }
  return table;
}

/** Parse the `ACTION_RIGHTS` setting (JSON text; empty means the defaults). */
export function parseActionRights(text: string | undefined): ActionRights {
  if (!text?.trim()) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ValidationError(
      'ACTION_RIGHTS: must be JSON, e.g. {"POST /vms/{id}/backup": {"vm": "manage"}}',
    );
  }
  const parsed = ActionRights.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(
      `ACTION_RIGHTS: ${issue?.path.join('.') || 'value'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  routeRights(parsed.data);
  return parsed.data;
}
