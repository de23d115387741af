/**
 * The HTTP API's route table: CDK adds one API Gateway HTTP API route per entry and the local
 * gateway matches requests against the same list, so both deployments expose exactly these.
 * Paths use API Gateway syntax (`/vms/{id}`); the handler dispatches on `routeKey`
 * (`"GET /vms/{id}"`).
 */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One HTTP API route. */
export interface RouteSpec {
  method: HttpMethod;
  path: string;
  /**
   * `iam`: API Gateway authorizes the request with IAM (a SigV4 signature), and the handler takes
   * no bearer token on it (functions/api/auth.ts). `none`: no authentication at all, for what
   * holds no data (the API's own description). Every other route authenticates a bearer token.
   */
  auth?: 'iam' | 'none';
}

/** Every route of the API, in the order of the shared brief. */
export const ROUTES: readonly RouteSpec[] = [
  { method: 'GET', path: '/hosts' },
  { method: 'POST', path: '/hosts' },
  { method: 'POST', path: '/hosts/enroll' },
  { method: 'POST', path: '/hosts/register' },
  { method: 'GET', path: '/hosts/{id}' },
  { method: 'PATCH', path: '/hosts/{id}' },
  { method: 'DELETE', path: '/hosts/{id}' },
  { method: 'PUT', path: '/hosts/{id}/inventory' },
  { method: 'GET', path: '/vms' },
  { method: 'GET', path: '/vms/{id}' },
  { method: 'DELETE', path: '/vms/{id}' },
  { method: 'GET', path: '/vms/{id}/backup-config' },
  { method: 'PUT', path: '/vms/{id}/backup-config' },
  { method: 'POST', path: '/vms/{id}/backup' },
  { method: 'PUT', path: '/vms/{id}/owner' },
  { method: 'PUT', path: '/vms/{id}/permissions' },
  { method: 'GET', path: '/datastores' },
  { method: 'POST', path: '/datastores' },
  { method: 'GET', path: '/datastores/{id}' },
  { method: 'PATCH', path: '/datastores/{id}' },
  { method: 'DELETE', path: '/datastores/{id}' },
  { method: 'PUT', path: '/datastores/{id}/owner' },
  { method: 'PUT', path: '/datastores/{id}/permissions' },
  { method: 'POST', path: '/datastores/{id}/monitor' },
  { method: 'POST', path: '/datastores/{id}/import' },
  { method: 'GET', path: '/datastores/{id}/capacity' },
  { method: 'GET', path: '/datastores/{id}/schedules' },
  { method: 'POST', path: '/datastores/{id}/schedules' },
  { method: 'DELETE', path: '/datastores/{id}/schedules/{schedId}' },
  { method: 'GET', path: '/images' },
  { method: 'GET', path: '/images/{id}' },
  { method: 'DELETE', path: '/images/{id}' },
  { method: 'POST', path: '/images/{id}/restore' },
  { method: 'POST', path: '/images/{id}/verify' },
  { method: 'GET', path: '/drills' },
  { method: 'GET', path: '/drills/{id}' },
  { method: 'PUT', path: '/images/{id}/owner' },
  { method: 'PUT', path: '/images/{id}/permissions' },
  { method: 'POST', path: '/downloads' },
  { method: 'GET', path: '/executions' },
  { method: 'GET', path: '/executions/{id}' },
  { method: 'POST', path: '/executions/{id}/cancel' },
  { method: 'GET', path: '/config' },
  { method: 'GET', path: '/vms/{id}/schedules' },
  { method: 'POST', path: '/vms/{id}/schedules' },
  { method: 'DELETE', path: '/vms/{id}/schedules/{schedId}' },
  { method: 'GET', path: '/jobs' },
  { method: 'POST', path: '/jobs' },
  { method: 'GET', path: '/jobs/{id}' },
  { method: 'PATCH', path: '/jobs/{id}' },
  { method: 'DELETE', path: '/jobs/{id}' },
  { method: 'PUT', path: '/jobs/{id}/owner' },
  { method: 'PUT', path: '/jobs/{id}/permissions' },
  { method: 'POST', path: '/jobs/{id}/backup' },
  { method: 'POST', path: '/jobs/{id}/retry' },
  { method: 'GET', path: '/jobs/{id}/schedules' },
  { method: 'POST', path: '/jobs/{id}/schedules' },
  { method: 'DELETE', path: '/jobs/{id}/schedules/{schedId}' },
  // Who the caller is (the console's signed-in user, `lifeboat whoami`).
  { method: 'GET', path: '/me' },
  { method: 'GET', path: '/users' },
  { method: 'POST', path: '/users' },
  { method: 'GET', path: '/users/{name}' },
  { method: 'PATCH', path: '/users/{name}' },
  { method: 'DELETE', path: '/users/{name}' },
  { method: 'GET', path: '/groups' },
  { method: 'POST', path: '/groups' },
  { method: 'GET', path: '/groups/{name}' },
  { method: 'DELETE', path: '/groups/{name}' },
  { method: 'GET', path: '/users/{name}/quota' },
  { method: 'PUT', path: '/users/{name}/quota' },
  { method: 'GET', path: '/groups/{name}/quota' },
  { method: 'PUT', path: '/groups/{name}/quota' },
  { method: 'GET', path: '/tokens' },
  { method: 'POST', path: '/tokens' },
  { method: 'DELETE', path: '/tokens/{tokenId}' },
  { method: 'GET', path: '/audit' },
  { method: 'GET', path: '/stats' },
  // The OpenAPI document (functions/api/openapi.ts): schemas only, for clients and the console.
  { method: 'GET', path: '/openapi.json', auth: 'none' },
  // A runner in AWS, signed with its IAM Roles Anywhere session: its host, its inventory, its
  // key. The runner's IAM policy allows only the paths whose {id} is its certificate's CN.
  { method: 'GET', path: '/runner/hosts/{id}', auth: 'iam' },
  { method: 'PUT', path: '/runner/hosts/{id}/inventory', auth: 'iam' },
  { method: 'PUT', path: '/runner/hosts/{id}/key', auth: 'iam' },
];

/** Route keys of the IAM-authorized routes. */
export const IAM_ROUTE_KEYS: ReadonlySet<string> = new Set(
  ROUTES.filter((route) => route.auth === 'iam').map(routeKey),
);

/** Route keys of the routes that take no authentication at all. */
export const PUBLIC_ROUTE_KEYS: ReadonlySet<string> = new Set(
  ROUTES.filter((route) => route.auth === 'none').map(routeKey),
);

/** The API Gateway route key of a route (`"GET /vms/{id}"`). */
export function routeKey(route: RouteSpec): string {
  return `${route.method} ${route.path}`;
}
