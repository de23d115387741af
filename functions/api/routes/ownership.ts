/**
 * `chown` and `chmod` of owned objects (`lifeboat vm|datastore|image|backupjob chown|chmod`), as
 * OpenNebula's: `PUT /<objects>/{id}/owner {owner?, group?}` and
 * `PUT /<objects>/{id}/permissions {permissions: "640"}`. The rights table (core/rights.ts)
 * decides who may call each; beyond it, as upstream, only an admin gives an object to another
 * user, a user gives one only to their own group, and changing an admin bit needs admin on the
 * object.
 */
import { ChmodBody, ChownBody, parseBody } from '#core/contracts/api.ts';
import { Forbidden, NotFound } from '#core/errors.ts';
import { can, type Owned, permissionsFromOctal, permissionsToOctal } from '#core/permissions.ts';
import type { ObjectKind } from '#core/rights.ts';
import { datastores } from '../../repo/datastores.ts';
import { images } from '../../repo/images.ts';
import { jobs } from '../../repo/jobs.ts';
import { vms } from '../../repo/vms.ts';
import { authorize, rightsTable } from '../access.ts';
import { json, pathId, type RouteContext, type RouteHandler } from '../http.ts';
import { assertOwnerExists, isOwnerGroup } from './owner-names.ts';

type OwnedRecord = Owned & { id: number };

/** The repository and path of each kind of owned object. */
const KINDS: Record<
  ObjectKind,
  {
    path: string;
    label: string;
    get(id: number): Promise<OwnedRecord>;
    update(id: number, set: Record<string, unknown>): Promise<OwnedRecord>;
  }
> = {
  vm: { path: '/vms', label: 'VM', get: (id) => vms.get(id), update: (id, s) => vms.update(id, s) },
  datastore: {
    path: '/datastores',
    label: 'Datastore',
    get: (id) => datastores.get(id),
    update: (id, s) => datastores.update(id, s),
  },
  image: {
    path: '/images',
    label: 'Image',
    get: (id) => images.get(id),
    update: (id, s) => images.update(id, s),
  },
  job: {
    path: '/jobs',
    label: 'Backup job',
    get: (id) => jobs.get(id),
    update: (id, s) => jobs.update(id, s),
  },
};

/** What `chown` and `chmod` answer: the object's ownership, its permissions also in octal. */
function ownershipView(object: OwnedRecord) {
  return {
    id: object.id,
    owner: object.owner,
    group: object.group,
    permissions: object.permissions,
    octal: permissionsToOctal(object.permissions),
  };
}

/** The object of the path; on a route open to users, checked against the route's row. */
async function objectFor(ctx: RouteContext, kind: ObjectKind): Promise<OwnedRecord> {
  const object = await KINDS[kind].get(pathId(ctx));
  if (rightsTable()[ctx.route]?.caller === 'user') authorize(ctx, kind, object);
  return object;
}

function chown(kind: ObjectKind): RouteHandler {
  return async (ctx) => {
    const body = parseBody(ChownBody, ctx.body);
    const object = await objectFor(ctx, kind);
    const what = `${KINDS[kind].label} ${object.id}`;
    const admin = ctx.user.role === 'admin';
    if (body.owner !== undefined && body.owner !== object.owner) {
      if (!admin) throw new Forbidden(`only admins may give ${what} to another user`);
      await assertOwnerExists(body.owner);
    }
    if (body.group !== undefined && body.group !== object.group) {
      if (!admin && body.group !== ctx.user.group) {
        throw new Forbidden(`${ctx.user.name} may give ${what} only to their own group (${ctx.user.group})`);
      }
      if (!(await isOwnerGroup(body.group))) throw new NotFound(`Group ${body.group} does not exist`);
    }
    const updated = await KINDS[kind].update(object.id, { owner: body.owner, group: body.group });
    return json(ownershipView(updated));
  };
}

function chmod(kind: ObjectKind): RouteHandler {
  return async (ctx) => {
    const body = parseBody(ChmodBody, ctx.body);
    const object = await objectFor(ctx, kind);
    const permissions = permissionsFromOctal(body.permissions);
    const adminBits = (p: string) => `${p[2]}${p[5]}${p[8]}`;
    if (adminBits(permissions) !== adminBits(object.permissions) && !can(ctx.user, object, 'admin')) {
      throw new Forbidden(
        `${ctx.user.name} may not admin ${KINDS[kind].label} ${object.id}: changing an admin bit needs it`,
      );
    }
    const updated = await KINDS[kind].update(object.id, { permissions });
    return json(ownershipView(updated));
  };
}

/** The chown and chmod routes by route key. */
export const ownershipRoutes: Record<string, RouteHandler> = Object.fromEntries(
  (Object.keys(KINDS) as ObjectKind[]).flatMap((kind) => [
    [`PUT ${KINDS[kind].path}/{id}/owner`, chown(kind)],
    [`PUT ${KINDS[kind].path}/{id}/permissions`, chmod(kind)],
  ]),
);
