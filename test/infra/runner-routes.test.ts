/**
 * The runner's API routes in AWS, read from the synthesized template: API Gateway authorizes
 * them with IAM (and no other route), and the runner policy lets a runner invoke them only with
 * its own host id in the path, the `x509Subject/CN` tag IAM Roles Anywhere sets.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ROUTES, routeKey } from '#functions/api/routes.ts';
import { actionsOf, logicalIdByPath, type StatementJson, type Synthesized, synthLifeboat } from './synth.ts';

// biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a JS template
const HOST = '${aws:PrincipalTag/x509Subject/CN}';
const RUNNER_ROUTES = [
  'GET /runner/hosts/{id}',
  'PUT /runner/hosts/{id}/inventory',
  'PUT /runner/hosts/{id}/key',
];

let synth: Synthesized;
beforeAll(() => {
  synth = synthLifeboat();
});

const routeResources = () =>
  Object.values(synth.json.Resources)
    .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
    .map((r) => r.Properties ?? {});

describe('runner routes', () => {
  it('are the IAM-authorized routes of ROUTES', () => {
    expect(
      ROUTES.filter((r) => r.auth === 'iam')
        .map(routeKey)
        .sort(),
    ).toEqual(RUNNER_ROUTES);
  });

  it('have AuthorizationType AWS_IAM, and every other route but the OpenAPI document the bearer-token authorizer (CUSTOM)', () => {
    const routes = routeResources();
    expect(routes).toHaveLength(ROUTES.length);
    for (const route of routes) {
      const key = String(route.RouteKey);
      if (RUNNER_ROUTES.includes(key))
        expect({ key, auth: route.AuthorizationType }).toEqual({ key, auth: 'AWS_IAM' });
      // The one route open to anyone: the OpenAPI document, schemas only.
      else if (key === 'GET /openapi.json')
        expect({ key, auth: route.AuthorizationType ?? 'NONE' }).toEqual({ key, auth: 'NONE' });
      else expect({ key, auth: route.AuthorizationType ?? 'NONE' }).toEqual({ key, auth: 'CUSTOM' });
    }
  });

  it('may be invoked by a runner only on its own host id: the x509Subject/CN tag in every path', () => {
    const policyId = logicalIdByPath(synth.json, 'Runner/Policy/Resource');
    const doc = synth.json.Resources[policyId]?.Properties?.PolicyDocument as { Statement: StatementJson[] };
    const invoke = doc.Statement.filter((s) => actionsOf(s).some((a) => a.startsWith('execute-api:')));
    expect(invoke).toHaveLength(1);
    expect(actionsOf(invoke[0] as StatementJson)).toEqual(['execute-api:Invoke']);
    expect(invoke[0]?.Condition).toEqual({ Null: { 'aws:PrincipalTag/x509Subject/CN': 'false' } });
    const apiId = logicalIdByPath(synth.json, 'Http/HttpApi/Resource');
    const resources = ((invoke[0] as StatementJson).Resource as unknown[]).map((r) => JSON.stringify(r));
    // Only the stage is a wildcard: method and path are exact, the host id is the tag.
    const tails = resources.map((r) => {
      expect(r).toContain(':execute-api:');
      expect(r).toContain(`{"Ref":"${apiId}"}`);
      return /"(\/\*\/[^"]*)"\]\]\}$/.exec(r)?.[1];
    });
    expect(tails.sort()).toEqual([
      `/*/GET/runner/hosts/${HOST}`,
      `/*/PUT/runner/hosts/${HOST}/inventory`,
      `/*/PUT/runner/hosts/${HOST}/key`,
    ]);
  });
});
