import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { CreateDatastoreBody, RestoreRequestBody } from '#core/contracts/api.ts';
import { openApiDocument } from './openapi.ts';
import { ROUTE_DOCS } from './route-docs.ts';
import { ROUTES, routeKey } from './routes.ts';

type Operation = {
  operationId: string;
  security?: unknown[];
  parameters?: { name: string; in: string; required: boolean }[];
  requestBody?: { content: Record<string, { schema: { $ref: string } }> };
  responses: Record<string, unknown>;
};
// biome-ignore lint/suspicious/noExplicitAny: the document is plain JSON read by path.
const doc = openApiDocument() as any;
const operationOf = (method: string, path: string): Operation | undefined =>
  doc.paths?.[path]?.[method.toLowerCase()];

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document for an independent validator (swagger-parser), every $ref resolving', async () => {
    expect(doc.openapi).toBe('3.1.0');
    // validate() dereferences too: a $ref to a missing component fails here.
    await expect(SwaggerParser.validate(structuredClone(doc))).resolves.toBeTruthy();
    // The validator does refuse a broken one: the check above is not vacuous.
    const broken = structuredClone(doc);
    broken.paths['/vms'].get.responses['200'].content['application/json'].schema = {
      $ref: '#/components/schemas/Nothing',
    };
    await expect(SwaggerParser.validate(broken)).rejects.toThrow(/Nothing/);
  });

  it('has every route of the router, with its method, and nothing else', () => {
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(ROUTES.map(routeKey).sort());
    expect(Object.keys(ROUTE_DOCS).sort()).toEqual(ROUTES.map(routeKey).sort());
    const ids = documented.map((key) => operationOf(...(key.split(' ') as [string, string]))?.operationId);
    expect(new Set(ids).size).toBe(ROUTES.length);
  });

  it('names each path parameter, required, with the rule the API checks', () => {
    for (const route of ROUTES) {
      const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const params = (operationOf(route.method, route.path)?.parameters ?? []).filter((p) => p.in === 'path');
      expect(
        params.map((p) => p.name),
        routeKey(route),
      ).toEqual(names);
      expect(params.every((p) => p.required)).toBe(true);
    }
    const id = doc.paths['/vms/{id}'].get.parameters[0];
    expect(id.schema).toEqual({ type: 'string', pattern: '^\\d{1,9}$' });
  });

  it('gives each route the way in it has: bearer token, runner IAM, or none for this document only', () => {
    expect(doc.security).toEqual([{ bearerToken: [] }]);
    expect(doc.components.securitySchemes.bearerToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const route of ROUTES) {
      const security = operationOf(route.method, route.path)?.security;
      if (route.auth === 'iam') expect(security, routeKey(route)).toEqual([{ runnerIam: [] }]);
      else if (route.auth === 'none') expect(security, routeKey(route)).toEqual([]);
      else expect(security, routeKey(route)).toBeUndefined();
    }
    expect(ROUTES.filter((r) => r.auth === 'none').map(routeKey)).toEqual(['GET /openapi.json']);
  });

  it('answers 4xx with the { error, message } shape on every route', () => {
    expect(doc.components.schemas.Error).toMatchObject({
      type: 'object',
      required: ['error', 'message'],
      properties: { error: { type: 'string' }, message: { type: 'string' } },
    });
    for (const route of ROUTES) {
      expect(operationOf(route.method, route.path)?.responses['4XX']).toEqual({
        $ref: '#/components/responses/Error',
      });
    }
  });

  it("describes request bodies with the handlers' own zod schemas: the JSON Schema accepts and refuses as zod does", () => {
    const body = operationOf('POST', '/datastores')?.requestBody?.content['application/json']?.schema;
    expect(body).toEqual({ $ref: '#/components/schemas/CreateDatastoreBody' });
    expect(operationOf('POST', '/images/{id}/restore')?.requestBody).toBeDefined();
    expect(operationOf('GET', '/vms')?.requestBody).toBeUndefined();
    // An independent JSON Schema 2020-12 validator on the components, against zod's verdicts.
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema({ $id: 'lifeboat', components: doc.components });
    const check = (name: string, value: unknown) =>
      ajv.validate({ $ref: `lifeboat#/components/schemas/${name}` }, value);
    const samples: [string, { safeParse(v: unknown): { success: boolean } }, unknown][] = [
      [
        'CreateDatastoreBody',
        CreateDatastoreBody,
        { name: 'ds', driver: 'rsync', attributes: { RSYNC_HOST: 'h' } },
      ],
      ['CreateDatastoreBody', CreateDatastoreBody, { name: 'ds', driver: 'ftp' }],
      ['CreateDatastoreBody', CreateDatastoreBody, { name: 'ds', driver: 'rsync', colour: 'red' }],
      ['RestoreRequestBody', RestoreRequestBody, { name: 'copy', noIp: true }],
      ['RestoreRequestBody', RestoreRequestBody, { name: 'copy', noIp: 'yes' }],
      ['RestoreRequestBody', RestoreRequestBody, { priority: 100 }],
    ];
    for (const [name, schema, value] of samples) {
      expect(check(name, value), `${name} ${JSON.stringify(value)}`).toBe(schema.safeParse(value).success);
    }
  });

  it('answers with the models of core/model.ts where a route answers one', () => {
    const ok = (method: string, path: string, status: string) =>
      // biome-ignore lint/suspicious/noExplicitAny: plain JSON.
      (operationOf(method, path)?.responses[status] as any)?.content?.['application/json']?.schema;
    expect(ok('GET', '/vms/{id}', '200')).toEqual({ $ref: '#/components/schemas/Vm' });
    expect(ok('GET', '/executions', '200').properties.items.items).toEqual({
      $ref: '#/components/schemas/Execution',
    });
    expect(ok('POST', '/vms/{id}/backup', '202')).toEqual({ $ref: '#/components/schemas/Execution' });
    expect(doc.components.schemas.Execution.properties.state.enum).toContain('ABORTED');
    expect(operationOf('DELETE', '/vms/{id}')?.responses['204']).toEqual({ description: 'No content' });
  });
});
