/**
 * Every error class keeps its name in the shipped, minified bundle: the API's `error`, a step's
 * errorType and the names the state machines retry on are read from `error.name`. Each module
 * that exports error classes is bundled with the deployed options and its classes constructed
 * from the bundle: a class that took its name from `new.target.name` would come out renamed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '#infra/functions.ts';
import { type Bundle, bundleModule } from '../helpers/bundle.ts';

const FOLDERS = ['core', 'platform', 'functions', 'drivers', 'runner', 'cli', 'local'];
/** Their name is the remote error's type by design (a Step Functions or Lambda error passed on). */
const DYNAMIC = new Set(['SfnApiError', 'TaskFailed', 'FunctionError']);

function sources(dir: string): string[] {
  return readdirSync(path.join(PROJECT_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => path.relative(PROJECT_ROOT, path.join(e.parentPath, e.name)));
}

/** Files exporting a class that extends an error class, with those classes. */
const declared = new Map<string, string[]>();
for (const file of FOLDERS.flatMap(sources)) {
  const text = readFileSync(path.join(PROJECT_ROOT, file), 'utf8');
  const names = [...text.matchAll(/export class (\w+) extends (\w+)/g)]
    .filter(([, , base]) => base?.endsWith('Error'))
    .map(([, name]) => name as string)
    .filter((name) => !DYNAMIC.has(name));
  if (names.length) declared.set(file, names);
}

const bundles: Bundle[] = [];
afterAll(async () => {
  for (const b of bundles) await b.remove();
});

describe('error names survive minified bundling', () => {
  it('finds the error modules', () => {
    expect([...declared.keys()]).toEqual(
      expect.arrayContaining(['core/errors.ts', 'drivers/exec.ts', 'runner/errors.ts', 'cli/errors.ts']),
    );
  });

  for (const [file, names] of declared) {
    it(`${file}: ${names.join(', ')}`, async () => {
      const bundle = await bundleModule(file);
      bundles.push(bundle);
      for (const name of names) {
        const Class = bundle.module[name] as new (m: string) => Error;
        expect(Class, `${name} exported from the bundle`).toBeTypeOf('function');
        const error = new Class('m');
        expect(error).toBeInstanceOf(Error);
        expect(error.name).toBe(name);
      }
    });
  }

  it('keeps the status codes of the typed errors', async () => {
    const bundle = await bundleModule('core/errors.ts');
    bundles.push(bundle);
    const status = (name: string) =>
      new (bundle.module[name] as new (m: string) => { status: number })('m').status;
    expect(
      [
        'LifeboatError',
        'ValidationError',
        'Unauthorized',
        'Forbidden',
        'NotFound',
        'Conflict',
        'DatastoreLocked',
        'Throttled',
      ].map((n) => [n, status(n)]),
    ).toEqual([
      ['LifeboatError', 500],
      ['ValidationError', 400],
      ['Unauthorized', 401],
      ['Forbidden', 403],
      ['NotFound', 404],
      ['Conflict', 409],
      ['DatastoreLocked', 503],
      ['Throttled', 503],
    ]);
  });
});
