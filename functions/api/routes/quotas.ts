/**
 * `lifeboat user quota NAME [DSID] [SIZE=MiB] [IMAGES=N]` and the same for groups: datastore
 * quotas (core/quota.ts, stored by functions/operations/quota.ts). Reading: a user their own
 * (a group member their group's), admins anyone's; setting: admins only (the rights table).
 * The answer shows, for all datastores together and for each datastore, usage against limits.
 */
import { ADMIN_GROUP, isBuiltinGroup } from '#core/accounts.ts';
import { SetQuotaBody } from '#core/contracts/accounts.ts';
import { parseBody } from '#core/contracts/api.ts';
import { NotFound, ValidationError } from '#core/errors.ts';
import { exempt, parseQuotaPairs, type QuotaEntry, type QuotaOwner } from '#core/quota.ts';
import { log } from '#platform/log.ts';
import { readQuota, setQuota } from '../../operations/quota.ts';
import { datastores } from '../../repo/datastores.ts';
import { groups } from '../../repo/groups.ts';
import { json, type RouteHandler } from '../http.ts';
import { groupNameParam, userNamed, userNameParam } from './accounts-shared.ts';

/** What the quota routes answer. */
interface QuotaView {
  kind: QuotaOwner['kind'];
  name: string;
  /** An admin or the admin group: charged nothing, whatever the limits say. */
  exempt: boolean;
  /** `datastore: "all"` first, then each datastore. */
  entries: QuotaEntry[];
}

/** The owner the path names, and whether it is charged nothing; 404 when no such user or group. */
async function ownerOf(kind: QuotaOwner['kind'], raw: string | undefined): Promise<[QuotaOwner, boolean]> {
  if (kind === 'user') {
    const user = await userNamed(userNameParam(raw));
    return [{ kind, name: user.name }, exempt(user.name, user.group)];
  }
  const name = groupNameParam(raw);
  if (!isBuiltinGroup(name) && !(await groups.find(name))) throw new NotFound(`group ${name} does not exist`);
  // A group's own objects: exempt when it is the admin group, whoever owns them.
  return [{ kind, name }, name === ADMIN_GROUP];
}

async function view(owner: QuotaOwner, exemptOwner: boolean): Promise<QuotaView> {
  const ids = (await datastores.list()).map((d) => d.id).sort((a, b) => a - b);
  return { ...owner, exempt: exemptOwner, entries: await readQuota(owner, ids) };
}

const show =
  (kind: QuotaOwner['kind']): RouteHandler =>
  async (ctx) =>
    json(await view(...(await ownerOf(kind, ctx.params.name))));

const set =
  (kind: QuotaOwner['kind']): RouteHandler =>
  async (ctx) => {
    const [owner, exemptOwner] = await ownerOf(kind, ctx.params.name);
    const body = parseBody(SetQuotaBody, ctx.body);
    const limits = parseQuotaPairs(body.pairs);
    if (limits.size === undefined && limits.images === undefined) {
      throw new ValidationError('pairs: give SIZE=MiB and/or IMAGES=N (-1 = unlimited)');
    }
    if (body.datastoreId !== undefined) await datastores.get(body.datastoreId);
    await setQuota(owner, body.datastoreId ?? 'all', limits);
    log('info', 'quota set', {
      owner: `${owner.kind}:${owner.name}`,
      datastore: body.datastoreId ?? 'all',
      ...limits,
      by: ctx.user.name,
    });
    return json(await view(owner, exemptOwner));
  };

/** Quota routes by route key. */
export const quotaRoutes: Record<string, RouteHandler> = {
  'GET /users/{name}/quota': show('user'),
  'PUT /users/{name}/quota': set('user'),
  'GET /groups/{name}/quota': show('group'),
  'PUT /groups/{name}/quota': set('group'),
};
