/**
 * `GET /stats`: backups succeeded and failed over the last 24 hours and 7 days (bytes, median
 * seconds), datastores' capacity, VMs missing their scheduled backup and failed verifications:
 * any user, over what they may use (admins: everything). See functions/operations/stats.ts.
 */
import { z } from 'zod';
import { readStats } from '../../operations/stats.ts';
import { canUse } from '../access.ts';
import { json, parseQuery, type RouteHandler } from '../http.ts';

/** No query parameter is taken: an unknown one is a mistake, answered 400. */
const StatsQuery = z.strictObject({});

const show: RouteHandler = async (ctx) => {
  parseQuery(StatsQuery, ctx);
  return json(await readStats((object) => canUse(ctx.user, object)));
};

/** Stats routes by route key. */
export const statsRoutes: Record<string, RouteHandler> = { 'GET /stats': show };
