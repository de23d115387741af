/**
 * The console's API types (console/src/api-types.gen.ts) are the OpenAPI document the API
 * serves, put through console/src/openapi-codegen.ts: a route, body or model changed in the API
 * without the types written again fails here. Write them again with
 * `vitest run test/console/api-types.test.ts -u`.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '#functions/api/openapi.ts';
import { type OpenApiDocument, openApiTypes } from '../../console/src/openapi-codegen.ts';

const GENERATED = join(import.meta.dirname, '..', '..', 'console', 'src', 'api-types.gen.ts');

describe('console API types', () => {
  it('are the OpenAPI document the API serves, as generated (run with -u to write them again)', async () => {
    const source = openApiTypes(openApiDocument() as unknown as OpenApiDocument);
    await expect(source).toMatchFileSnapshot(GENERATED);
  });

  it('type models as answered and bodies as sent', () => {
    const doc = openApiDocument() as unknown as OpenApiDocument;
    const source = openApiTypes(doc);
    // Execution.phase has a default: always in an answer.
    expect(source).toMatch(/export type Execution = \{[\s\S]*?\n {2}phase: string;/);
    // RestoreRequestBody.noIp has a default: a client may leave it out.
    expect(source).toMatch(/export type RestoreRequestBody = \{[\s\S]*?\n {2}noIp\?: boolean;/);
    expect(source).toContain(
      "'POST /images/{id}/restore': {\n    body: RestoreRequestBody;\n    answer: Execution;",
    );
    // Every operation of the document is in the map.
    const count = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    expect(source.match(/^ {2}'(GET|POST|PUT|PATCH|DELETE) \//gm)).toHaveLength(count);
  });
});
