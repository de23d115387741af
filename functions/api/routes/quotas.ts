/**
 * `lifeboat user quota NAME [DSID] [SIZE=MiB] [IMAGES=N]` and the same for groups: datastore
 * quotas (core/quota.ts, stored by functions/operations/quota.ts). Reading: a user their own
 * (a group member their group's), admins anyone's; setting: admins only (the rights table).
 * The answer shows, for all datastores together and for each datastore, usage against limits.
 */
import { isBuiltinGroup } from '#core/accounts.ts';
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

/** The owner the path names; 404 when no such user or group. */
async function ownerOf(kind: QuotaOwner['kind'], raw: string | undefined): Promise<QuotaOwner> {
  if (kind === 'user') return { kind, name: (await userNamed(userNameParam(raw))).name };
  const name = groupNameParam(raw);
  if (!isBuiltinGroup(name) && !(await groups.find(name))) throw new NotFound(`group ${name} does not exist`);
  return { kind, name };
}

async function view(owner: QuotaOwner, exemptOwner: boolean): Promise<QuotaView> {
  const ids = (await datastores.list()).map((d) => d.id).sort((a, b) => a - b);
  return { ...owner, exempt: exemptOwner, entries: await readQuota(owner, ids) };
}

/** Whether the owner is exempt: the user `admin` or anyone in the admin group, or that group. */
async function isExempt(owner: QuotaOwner): Promise<boolean> {
  if (owner.kind === 'group') return exempt('', owner.name);
  const user = await userNamed(owner.name);
  return exempt(user.name, user.group);
}

const show =
  (kind: QuotaOwner['kind']): RouteHandler =>
  async (ctx) => {
    const owner = await ownerOf(kind, ctx.params.name);
    return json(await view(owner, await isExempt(owner)));
  };

const set =
  (kind: QuotaOwner['kind']): RouteHandler =>
  async (ctx) => {
    const owner = await ownerOf(kind, ctx.params.name);
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
    return json(await view(owner, await isExempt(owner)));
  };

/** Quota routes by route key. */
export const quotaRoutes: Record<string, RouteHandler> = {
  'GET /users/{name}/quota': show('user'),
  'PUT /users/{name}/quota': set('user'),
  'GET /groups/{name}/quota': show('group'),
  'PUT /groups/{name}/quota': set('group'),
};
