/** `GET /config`: the limits and timings clients show and respect. */
import { limits } from '../../env.ts';
import { json, type RouteHandler } from '../http.ts';

/** Config routes by route key. */
export const configRoutes: Record<string, RouteHandler> = {
  'GET /config': async () => json(limits()),
};
