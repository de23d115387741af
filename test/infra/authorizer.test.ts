/**
 * The bearer-token authorizer in the template: a Lambda REQUEST authorizer (Authorization
 * header, simple responses, cached at most 60 s) on every route but the runner's IAM ones, its
 * function allowed to read the users and tokens tables and nothing else, and cdk-nag's
 * API-authorization finding (APIG4) met rather than acknowledged.
 */
import { Validations } from 'aws-cdk-lib';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROUTES, routeKey } from '#functions/api/routes.ts';
import { findLogicalId } from '#infra/definition.ts';
import {
  actionsOf,
  logicalIdByPath,
  logicalIdsOfType,
  type Synthesized,
  statementsOfRole,
  synthLifeboat,
} from './synth.ts';

let synth: Synthesized;
beforeAll(() => {
  synth = synthLifeboat();
});

const resource = (id: string) =>
  synth.json.Resources[id] as { Type: string; Properties: Record<string, unknown> };

function fnLogicalId(id: string): string {
  const logicalId = findLogicalId(synth.json, 'AWS::Lambda::Function', id);
  if (!logicalId) throw new Error(`no function ${id}`);
  return logicalId;
}

describe('bearer-token authorizer', () => {
  it('is one Lambda REQUEST authorizer on the Authorization header, simple responses, cached at most 60 s', () => {
    const [id, ...others] = logicalIdsOfType(synth.json, 'AWS::ApiGatewayV2::Authorizer');
    expect(others).toEqual([]);
    const props = resource(id ?? '').Properties;
    expect(props).toMatchObject({
      AuthorizerType: 'REQUEST',
      IdentitySource: ['$request.header.Authorization'],
      EnableSimpleResponses: true,
      AuthorizerPayloadFormatVersion: '2.0',
    });
    expect(props.AuthorizerResultTtlInSeconds).toBeGreaterThan(0);
    expect(props.AuthorizerResultTtlInSeconds).toBeLessThanOrEqual(60);
    expect(JSON.stringify(props.AuthorizerUri)).toContain(fnLogicalId('Authorizer'));
  });

  it('guards every route but the IAM ones (those keep IAM) and the OpenAPI document', () => {
    const authorizer = logicalIdsOfType(synth.json, 'AWS::ApiGatewayV2::Authorizer')[0];
    const routes = logicalIdsOfType(synth.json, 'AWS::ApiGatewayV2::Route').map(
      (id) => resource(id).Properties,
    );
    expect(routes).toHaveLength(ROUTES.length);
    for (const spec of ROUTES) {
      const route = routes.find((r) => r.RouteKey === routeKey(spec));
      expect(route, routeKey(spec)).toBeDefined();
      if (spec.auth === 'iam') {
        expect(route?.AuthorizationType, routeKey(spec)).toBe('AWS_IAM');
      } else if (spec.auth === 'none') {
        expect(route?.AuthorizationType ?? 'NONE', routeKey(spec)).toBe('NONE');
      } else {
        expect(route?.AuthorizationType, routeKey(spec)).toBe('CUSTOM');
        expect(route?.AuthorizerId, routeKey(spec)).toEqual({ Ref: authorizer });
      }
    }
    // Only the OpenAPI document (schemas, no data) is open to anyone.
    expect(
      routes
        .filter((r) => r.AuthorizationType === undefined || r.AuthorizationType === 'NONE')
        .map((r) => r.RouteKey),
    ).toEqual(['GET /openapi.json']);
  });

  it('runs with a role that reads the users and tokens tables and nothing else', () => {
    const role = (resource(fnLogicalId('Authorizer')).Properties.Role as { 'Fn::GetAtt': string[] })[
      'Fn::GetAtt'
    ][0];
    const statements = statementsOfRole(synth.json, role ?? '');
    const users = logicalIdByPath(synth.json, 'Tables/Users/Resource');
    const tokens = logicalIdByPath(synth.json, 'Tables/Tokens/Resource');
    const dynamo = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    expect(dynamo.length).toBeGreaterThan(0);
    for (const statement of dynamo) {
      const resources = JSON.stringify(statement.Resource);
      const tables = logicalIdsOfType(synth.json, 'AWS::DynamoDB::Table').filter((t) =>
        resources.includes(t),
      );
      expect(
        tables.every((t) => t === users || t === tokens),
        resources,
      ).toBe(true);
      for (const action of actionsOf(statement)) {
        expect(action).toMatch(
          /^dynamodb:(BatchGetItem|GetRecords|GetShardIterator|Query|GetItem|Scan|ConditionCheckItem|DescribeTable)$/,
        );
      }
    }
    const other = statements
      .flatMap(actionsOf)
      .filter((a) => !a.startsWith('dynamodb:') && !a.startsWith('xray:') && !a.startsWith('logs:'));
    expect(other).toEqual([]);
  });

  it("meets cdk-nag's API authorization rule instead of acknowledging it, but on the OpenAPI document", () => {
    // The synth ran cdk-nag and passed; AwsSolutions-APIG4 is acknowledged on one route alone:
    // the OpenAPI document, which holds schemas only.
    const acks = synth.stack.node
      .findAll()
      .flatMap((c) =>
        c.node.metadata
          .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
          .map((m) => ({ path: c.node.path, data: JSON.stringify(m.data) })),
      );
    expect(acks.length).toBeGreaterThan(0);
    expect(acks.filter((a) => a.data.includes('APIG4')).map((a) => a.path)).toEqual([
      'Lifeboat/Http/HttpApi/GET--openapi.json',
    ]);
  });
});
