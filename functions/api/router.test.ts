import { describe, expect, it } from 'vitest';
import { findPublicRoute, findRoute, HANDLERS, matchRoute, PUBLIC_HANDLERS, resolveRoute } from './router.ts';
import { PUBLIC_ROUTE_KEYS, ROUTES, routeKey } from './routes.ts';

describe('route table', () => {
  it('has exactly one handler for every route of ROUTES, and none besides', () => {
    expect([...Object.keys(HANDLERS), ...Object.keys(PUBLIC_HANDLERS)].sort()).toEqual(
      ROUTES.map(routeKey).sort(),
    );
    expect(new Set(ROUTES.map(routeKey)).size).toBe(ROUTES.length);
    // The handlers that take no caller are exactly the routes without authentication.
    expect(Object.keys(PUBLIC_HANDLERS).sort()).toEqual([...PUBLIC_ROUTE_KEYS].sort());
  });

  it('finds a public route by routeKey or by path, and no other route as public', () => {
    const event = (routeKey: string, path: string) => ({
      routeKey,
      rawPath: path,
      requestContext: { http: { method: 'GET', path } } as never,
    });
    expect(findPublicRoute(event('GET /openapi.json', '/openapi.json'))).toBe(
      PUBLIC_HANDLERS['GET /openapi.json'],
    );
    expect(findPublicRoute(event('$default', '/openapi.json'))).toBe(PUBLIC_HANDLERS['GET /openapi.json']);
    expect(findPublicRoute(event('GET /vms', '/vms'))).toBeUndefined();
    // A bearer route's key wins over a path that would name the public one.
    expect(findPublicRoute(event('GET /vms', '/openapi.json'))).toBeUndefined();
    expect(findPublicRoute(event('$default', '/vms'))).toBeUndefined();
  });

  it('takes only its own route keys as matched: an inherited property name is no route', () => {
    const event = (routeKey: string) => ({
      routeKey,
      rawPath: '/nothing',
      requestContext: { http: { method: 'GET', path: '/nothing' } } as never,
    });
    for (const key of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect(findRoute(event(key)), key).toBeUndefined();
      expect(findPublicRoute(event(key)), key).toBeUndefined();
    }
    expect(findRoute(event('GET /openapi.json'))).toBeUndefined();
  });

  it('matches concrete paths with their parameters', () => {
    expect(matchRoute('GET', '/vms/7')).toEqual({ key: 'GET /vms/{id}', params: { id: '7' } });
    expect(matchRoute('post', '/vms/3/backup')).toEqual({
      key: 'POST /vms/{id}/backup',
      params: { id: '3' },
    });
    expect(matchRoute('GET', '/images/')).toEqual({ key: 'GET /images', params: {} });
    expect(matchRoute('PATCH', '/vms/7')).toBeUndefined();
    expect(matchRoute('GET', '/vms/7/nothing')).toBeUndefined();
  });

  it('uses API Gateway routeKey and pathParameters when present', () => {
    const route = resolveRoute({
      routeKey: 'DELETE /datastores/{id}',
      rawPath: '/ignored',
      pathParameters: { id: '100' },
      requestContext: { http: { method: 'DELETE', path: '/ignored' } } as never,
    });
    expect(route.key).toBe('DELETE /datastores/{id}');
    expect(route.params).toEqual({ id: '100' });
  });

  it('answers NotFound naming an unknown route', () => {
    expect(() =>
      resolveRoute({
        routeKey: '$default',
        rawPath: '/nope',
        requestContext: { http: { method: 'GET' } } as never,
      }),
    ).toThrow('no route GET /nope');
  });
});
