/**
 * The API described: an OpenAPI 3.1 document built from the one route table (./routes.ts) and
 * the very zod schemas the routes validate with (`parseBody` / `parseQuery`), converted by zod's
 * own `z.toJSONSchema` (JSON Schema draft 2020-12, the dialect of OpenAPI 3.1); what each route
 * takes and answers is in ./route-docs.ts. Served at `GET /openapi.json` without
 * authentication: it holds schemas only, never a stored value.
 */
import { z } from 'zod';
import pkg from '../../package.json' with { type: 'json' };
import { json, OTHER_PARAMETER, PATH_PARAMETERS, type PublicHandler } from './http.ts';
import { type Answer, ROUTE_DOCS, SCHEMAS, type SchemaName } from './route-docs.ts';
import { ROUTES, type RouteSpec, routeKey } from './routes.ts';

type JsonSchema = Record<string, unknown>;

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const GENERIC: JsonSchema = { type: 'object' };
const list = (items: JsonSchema): JsonSchema => ({
  type: 'object',
  required: ['items'],
  properties: { items: { type: 'array', items } },
});

/**
 * The components' schemas: each of {@link SCHEMAS} through `z.toJSONSchema` in one registry, so
 * one naming another is a `$ref` to it. Input side (`io: 'input'`): what a client sends, before
 * defaults and transforms; for the models, fields with a default may be absent.
 */
function componentSchemas(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(SCHEMAS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io: 'input',
    // A refinement across fields cannot be said in JSON Schema: the route still checks it.
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([name, { $schema: _s, $id: _i, ...schema }]) => [
      name,
      schema as JsonSchema,
    ]),
  );
}

function answerSchema(answer: Exclude<Answer, 'none'>): JsonSchema {
  if (answer === 'object') return GENERIC;
  if (answer === 'object[]') return list(GENERIC);
  if (answer.endsWith('[]')) return list(ref(answer.slice(0, -2)));
  return ref(answer);
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted (queued)',
  204: 'No content',
};

/** The path parameters of `path`, with the rule the API checks them against (./http.ts). */
function pathParameters(path: string): JsonSchema[] {
  return [...path.matchAll(/\{(\w+)\}/g)].map(([, name = '']) => {
    const { pattern, rule } = Object.hasOwn(PATH_PARAMETERS, name)
      ? (PATH_PARAMETERS[name] as (typeof PATH_PARAMETERS)[string])
      : OTHER_PARAMETER;
    return {
      name,
      in: 'path',
      required: true,
      description: rule,
      schema: { type: 'string', pattern: pattern.source },
    };
  });
}

/** The query parameters of a query schema: one per property of its JSON Schema. */
function queryParameters(schema: JsonSchema | undefined): JsonSchema[] {
  const properties = (schema?.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema?.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema: property,
  }));
}

/** `GET /vms/{id}/schedules` → `getVmsByIdSchedules`: unique, as method and path are. */
function operationId(route: RouteSpec): string {
  const words = route.path
    .split('/')
    .filter(Boolean)
    .map((segment) => {
      const param = /^\{(\w+)\}$/.exec(segment)?.[1];
      const word = (param ? `by-${param}` : segment).replace(
        /[^A-Za-z0-9]+(.)?/g,
        (_, c: string | undefined) => (c ?? '').toUpperCase(),
      );
      return word.charAt(0).toUpperCase() + word.slice(1);
    });
  return `${route.method.toLowerCase()}${words.join('')}`;
}

const ERROR_ANSWER = { $ref: '#/components/responses/Error' };

/** The operation object of one route. */
function operation(route: RouteSpec, schemas: Record<string, JsonSchema>): JsonSchema {
  const key = routeKey(route);
  const docOf = ROUTE_DOCS[key];
  if (!docOf) throw new Error(`openapi: route ${key} has no entry in ROUTE_DOCS`);
  const responses: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(docOf.ok) as [string, Answer][]) {
    responses[status] =
      answer === 'none'
        ? { description: STATUS_TEXT[Number(status)] }
        : {
            description: STATUS_TEXT[Number(status)],
            content: { 'application/json': { schema: answerSchema(answer) } },
          };
  }
  responses['4XX'] = ERROR_ANSWER;
  responses['5XX'] = ERROR_ANSWER;
  const parameters = [
    ...pathParameters(route.path),
    ...queryParameters(docOf.query ? schemas[docOf.query] : undefined),
  ];
  return {
    operationId: operationId(route),
    summary: docOf.summary,
    tags: [route.path.split('/')[1] === 'runner' ? 'runner' : (route.path.split('/')[1] ?? '')],
    ...(route.auth === 'none' && { security: [] }),
    ...(route.auth === 'iam' && { security: [{ runnerIam: [] }] }),
    ...(parameters.length > 0 && { parameters }),
    ...(docOf.body && {
      requestBody: { required: true, content: { 'application/json': { schema: ref(docOf.body) } } },
    }),
    responses,
  };
}

/** The OpenAPI 3.1 document of the API (`version`: the API's release, package.json's). */
export function openApiDocument(version = pkg.version): JsonSchema {
  const schemas = componentSchemas();
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.method.toLowerCase()] = operation(route, schemas);
  }
  // Queries are parameters, not bodies: their schemas live in the parameters alone.
  const used = new Set(Object.values(ROUTE_DOCS).flatMap((d) => (d.query ? [d.query] : [])));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Lifeboat API',
      version,
      description:
        'Backup and restore of KVM virtual machines. Every answer is JSON; an error is `{ error, message }` with its HTTP status.',
    },
    security: [{ bearerToken: [] }],
    paths,
    components: {
      schemas: {
        ...Object.fromEntries(Object.entries(schemas).filter(([name]) => !used.has(name as SchemaName))),
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: {
              type: 'string',
              description: 'Stable error name (ValidationError, Forbidden, NotFound, Conflict...)',
            },
            message: { type: 'string', description: 'One line for people' },
          },
        },
      },
      responses: {
        Error: {
          description: 'Refused or failed: the error name and a one-line message',
          content: { 'application/json': { schema: ref('Error') } },
        },
      },
      securitySchemes: {
        bearerToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API token (`lb_...`, `lifeboat token create`), as `Authorization: Bearer <token>`',
        },
        runnerIam: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description:
            "AWS SigV4 signature of a runner's IAM Roles Anywhere session (the /runner routes only)",
        },
      },
    },
  };
}

let built: JsonSchema | undefined;

/** `GET /openapi.json`: the document, built once per process. */
export const serveOpenApi: PublicHandler = async () => {
  built ??= openApiDocument();
  return json(built);
};
