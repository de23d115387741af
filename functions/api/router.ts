/**
 * Routing: from an API Gateway v2 event to the route module that handles it. API Gateway gives
 * `routeKey` (`"GET /vms/{id}"`) and `pathParameters`; when an event carries only a method and a
 * path (`$default`), the same {@link ROUTES} table is matched here.
 *
 * Not `@middy/http-router`: API Gateway has already matched the route (one route per row of
 * ROUTES in the CDK stack), so a second path matcher would only repeat its work; and the one
 * table here also names each route's IAM or bearer way in, its row in the rights table
 * (core/rights.ts) and its audit, which a router keyed on method and path alone cannot carry.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { NotFound } from '#core/errors.ts';
import type { PublicHandler, RouteHandler } from './http.ts';
import { serveOpenApi } from './openapi.ts';
import { auditRoutes } from './routes/audit.ts';
import { configRoutes } from './routes/config.ts';
import { datastoreRoutes } from './routes/datastores.ts';
import { downloadRoutes } from './routes/downloads.ts';
import { drillRoutes } from './routes/drills.ts';
import { executionRoutes } from './routes/executions.ts';
import { groupRoutes } from './routes/groups.ts';
import { hostEnrollmentRoutes } from './routes/host-enrollment.ts';
import { hostRoutes } from './routes/hosts.ts';
import { imageRoutes } from './routes/images.ts';
import { jobRoutes } from './routes/jobs.ts';
import { ownershipRoutes } from './routes/ownership.ts';
import { quotaRoutes } from './routes/quotas.ts';
import { runnerRoutes } from './routes/runner.ts';
import { scheduleRoutes } from './routes/schedules.ts';
import { statsRoutes } from './routes/stats.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { userRoutes } from './routes/users.ts';
import { vmRoutes } from './routes/vms.ts';
import { ROUTES, routeKey } from './routes.ts';

/** The handlers of the routes without authentication (`auth: 'none'`), by route key. */
export const PUBLIC_HANDLERS: Readonly<Record<string, PublicHandler>> = {
  'GET /openapi.json': serveOpenApi,
};

/**
 * Every other handler by route key; with {@link PUBLIC_HANDLERS}, must match {@link ROUTES}
 * exactly (a unit test checks it).
 */
export const HANDLERS: Readonly<Record<string, RouteHandler>> = {
  ...hostRoutes,
  ...hostEnrollmentRoutes,
  ...vmRoutes,
  ...datastoreRoutes,
  ...imageRoutes,
  ...downloadRoutes,
  ...drillRoutes,
  ...executionRoutes,
  ...configRoutes,
  ...jobRoutes,
  ...scheduleRoutes,
  ...runnerRoutes,
  ...userRoutes,
  ...groupRoutes,
  ...tokenRoutes,
  ...auditRoutes,
  ...ownershipRoutes,
  ...quotaRoutes,
  ...statsRoutes,
};

/** A matched route. */
export interface Match {
  key: string;
  params: Record<string, string>;
}

/** Match a method and a concrete path (`/vms/7`) against ROUTES. */
export function matchRoute(method: string, path: string): Match | undefined {
  const parts = path.replace(/\/+$/, '').split('/');
  for (const route of ROUTES) {
    if (route.method !== method.toUpperCase()) continue;
    const pattern = route.path.split('/');
    if (pattern.length !== parts.length) continue;
    const params: Record<string, string> = {};
    const ok = pattern.every((segment, i) => {
      const part = parts[i] ?? '';
      const param = /^\{(\w+)\}$/.exec(segment)?.[1];
      if (param) {
        if (part === '') return false;
        params[param] = decodeSegment(part);
        return true;
      }
      return segment === part;
    });
    if (ok) return { key: routeKey(route), params };
  }
  return undefined;
}

/** A percent-decoded path segment; malformed encoding stays as sent (validation then refuses it). */
function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

type RoutedEvent = Pick<APIGatewayProxyEventV2, 'routeKey' | 'rawPath' | 'pathParameters' | 'requestContext'>;

/**
 * The route key and parameters of an event, or undefined: its routeKey when API Gateway matched
 * one of ours (public or not), else its method and path matched here.
 */
function matchEvent(event: RoutedEvent): Match | undefined {
  const key = event.routeKey;
  if (key && (Object.hasOwn(HANDLERS, key) || Object.hasOwn(PUBLIC_HANDLERS, key))) {
    const params = Object.fromEntries(
      Object.entries(event.pathParameters ?? {}).filter((e): e is [string, string] => e[1] !== undefined),
    );
    return { key, params };
  }
  return matchRoute(methodOf(event), pathOf(event));
}

/** The route of an event that needs a caller, or undefined (none, or a public one). */
export function findRoute(event: RoutedEvent): (Match & { handler: RouteHandler }) | undefined {
  const match = matchEvent(event);
  const handler = match && Object.hasOwn(HANDLERS, match.key) ? HANDLERS[match.key] : undefined;
  return match && handler ? { ...match, handler } : undefined;
}

/** The handler of an event's public route (`auth: 'none'`), or undefined: no caller needed. */
export function findPublicRoute(event: RoutedEvent): PublicHandler | undefined {
  const key = matchEvent(event)?.key;
  return key !== undefined && Object.hasOwn(PUBLIC_HANDLERS, key) ? PUBLIC_HANDLERS[key] : undefined;
}

/** The route of an event; 404 when there is none. */
export function resolveRoute(event: RoutedEvent): Match & { handler: RouteHandler } {
  const found = findRoute(event);
  if (!found) throw new NotFound(`no route ${methodOf(event)} ${pathOf(event)}`);
  return found;
}

const methodOf = (event: RoutedEvent) => event.requestContext?.http?.method ?? '';
const pathOf = (event: RoutedEvent) => event.rawPath ?? event.requestContext?.http?.path ?? '';
