/**
 * The routes a runner calls in AWS, signed with its IAM Roles Anywhere session instead of a
 * bearer credential (ROUTES entries with `auth: 'iam'`). They run the very handlers of the host
 * routes; only the way the caller is authenticated differs (functions/api/auth.ts), and a runner
 * that has no enrollment registers its public key here instead of at `POST /hosts/register`.
 */
import { HostKeyBody, parseBody } from '#core/contracts/api.ts';
import { log } from '#platform/log.ts';
import { parseHostPublicKey } from '#platform/sealed-secrets.ts';
import { hosts } from '../../repo/hosts.ts';
import { assertHostOrAdmin } from '../access.ts';
import { json, pathId, type RouteHandler } from '../http.ts';
import { show } from './hosts.ts';
import { reportInventory } from './inventory.ts';

/**
 * `PUT /runner/hosts/{id}/key {publicKey, runnerVersion?}`: stores the runner's X25519 public key
 * on its host (created beforehand by an admin), which answers the host.
 */
const registerKey: RouteHandler = async (ctx) => {
  const hostId = pathId(ctx);
  assertHostOrAdmin(ctx.user, hostId, 'register the key');
  const body = parseBody(HostKeyBody, ctx.body);
  parseHostPublicKey(body.publicKey);
  // 404 for a host nobody created: a certificate alone does not make a host.
  const host = await hosts.update(hostId, {
    publicKey: body.publicKey,
    ...(body.runnerVersion ? { runnerVersion: body.runnerVersion } : {}),
  });
  log('info', 'host key registered', { hostId });
  return json(host);
};

/** The runner's IAM-authorized routes by route key. */
export const runnerRoutes: Record<string, RouteHandler> = {
  'GET /runner/hosts/{id}': show,
  'PUT /runner/hosts/{id}/inventory': reportInventory,
  'PUT /runner/hosts/{id}/key': registerKey,
};
