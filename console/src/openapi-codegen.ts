/**
 * TypeScript types from the API's own OpenAPI 3.1 document (`GET /openapi.json`): one type per
 * component schema and an `Operations` map (`'GET /vms/{id}'` → its body and answer), written
 * into console/src/api-types.gen.ts. Pure (no fs, no DOM): test/console/api-types.test.ts runs
 * it on the document the API serves and fails when the checked-in file drifts from it
 * (`vitest run test/console/api-types.test.ts -u` writes it again).
 *
 * Only what our document uses is understood (zod's `toJSONSchema` output): type, properties,
 * required, items, additionalProperties, enum, const, anyOf/oneOf, $ref, default. A schema
 * named as a request body is typed as a client sends it (a field with a default may be left
 * out); every other schema as the API answers it (a field with a default is always there).
 */

type Schema = Record<string, unknown>;

/** The part of an OpenAPI document the generator reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, Schema>>;
  components: { schemas: Record<string, Schema> };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

const refName = (ref: string): string => ref.replace('#/components/schemas/', '');

const literal = (value: unknown): string =>
  typeof value === 'string'
    ? `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
    : JSON.stringify(value);

/** A property name as a TypeScript key (quoted unless an identifier). */
const key = (name: string): string => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : literal(name));

/** The type of `schema` on a line indented by `indent`; `input`: defaulted fields are optional. */
function typeOf(schema: Schema | boolean | undefined, indent: string, input: boolean): string {
  if (schema === undefined || schema === true) return 'unknown';
  if (schema === false) return 'never';
  if (typeof schema.$ref === 'string') return refName(schema.$ref);
  if ('const' in schema) return literal(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map(literal).join(' | ');
  const union = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (union) {
    const members = union.map((s) => typeOf(s, `${indent}    `, input));
    // Biome's layout: a union with an object in it goes one member a line.
    if (!members.some((m) => m.includes('\n'))) return union.map((s) => typeOf(s, indent, input)).join(' | ');
    return members.map((m) => `\n${indent}  | ${m}`).join('');
  }
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string | undefined];
  return types.map((t) => simpleType(t, schema, indent, input)).join(' | ');
}

function simpleType(type: string | undefined, schema: Schema, indent: string, input: boolean): string {
  if (type === 'string') return 'string';
  if (type === 'number' || type === 'integer') return 'number';
  if (type === 'boolean') return 'boolean';
  if (type === 'null') return 'null';
  if (type === 'array') {
    const item = typeOf(schema.items as Schema | undefined, indent, input);
    return item.includes(' | ') && !/^[{R]/.test(item) ? `(${item})[]` : `${item}[]`;
  }
  if (type === 'object' || schema.properties) return objectType(schema, indent, input);
  return 'unknown';
}

function objectType(schema: Schema, indent: string, input: boolean): string {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const required = new Set((schema.required ?? []) as string[]);
  const extra = schema.additionalProperties as Schema | boolean | undefined;
  const names = Object.keys(properties);
  if (names.length === 0) {
    if (extra === false) return 'Record<string, never>';
    return `Record<string, ${typeOf(extra === undefined ? true : extra, indent, input)}>`;
  }
  const lines = names.map((name) => {
    const property = properties[name] as Schema;
    const always = required.has(name) || (!input && 'default' in property);
    const type = typeOf(property, `${indent}  `, input);
    return `${indent}  ${key(name)}${always ? '' : '?'}:${type.startsWith('\n') ? '' : ' '}${type};`;
  });
  return `{\n${lines.join('\n')}\n${indent}}`;
}

/** The schema name of a `#/components/schemas/X` reference in an operation's content. */
function contentRef(content: unknown): Schema | undefined {
  return (content as { 'application/json'?: { schema?: Schema } } | undefined)?.['application/json']?.schema;
}

/** The source of console/src/api-types.gen.ts for `doc`. */
export function openApiTypes(doc: OpenApiDocument): string {
  const bodies = new Set<string>();
  const operations: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const body = contentRef((op.requestBody as Schema | undefined)?.content);
      if (typeof body?.$ref === 'string') bodies.add(refName(body.$ref));
      const responses = (op.responses ?? {}) as Record<string, Schema>;
      const ok = Object.keys(responses).filter((status) => /^2\d\d$/.test(status));
      const answers = ok.map((status) => {
        const schema = contentRef(responses[status]?.content);
        return schema ? typeOf(schema, '    ', false) : 'undefined';
      });
      operations.push(
        [
          `  /** ${String(op.summary ?? '').replace(/\*\//g, '*\\/')} */`,
          `  '${method.toUpperCase()} ${path}': {`,
          `    body: ${body ? typeOf(body, '    ', true) : 'undefined'};`,
          `    answer: ${[...new Set(answers)].join(' | ') || 'undefined'};`,
          '  };',
        ].join('\n'),
      );
    }
  }
  const types = Object.entries(doc.components.schemas).map(
    ([name, schema]) => `export type ${name} = ${typeOf(schema, '', bodies.has(name))};`,
  );
  return [
    '/**',
    ' * The API as its OpenAPI document (GET /openapi.json) describes it. Generated by',
    ' * console/src/openapi-codegen.ts: do not edit. test/console/api-types.test.ts fails when it',
    ' * drifts from the document; `vitest run test/console/api-types.test.ts -u` writes it again.',
    ' */',
    '',
    ...types.flatMap((t) => [t, '']),
    '/** Every operation of the API, by `METHOD /path`: what it takes and what it answers. */',
    'export interface Operations {',
    ...operations,
    '}',
    '',
  ].join('\n');
}
