import { describe, expect, it } from 'vitest';
import { HANDLERS, matchRoute, resolveRoute } from './router.ts';
import { ROUTES, routeKey } from './routes.ts';

describe('route table', () => {
  it('has exactly one handler for every route of ROUTES, and none besides', () => {
    expect(Object.keys(HANDLERS).sort()).toEqual(ROUTES.map(routeKey).sort());
    expect(new Set(ROUTES.map(routeKey)).size).toBe(ROUTES.length);
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
