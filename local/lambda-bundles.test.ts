/**
 * The bundle cache: a start with unchanged inputs reuses the bundle (no esbuild run), a changed
 * input rebuilds it, a fresh home takes it from the checkout's shared store; and the bundle is
 * built with the deployed options (minified, ESM, the banner).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FunctionSpec } from '#functions/manifest.ts';
import { BUNDLE_FILE, buildBundle, esbuildOptions, prepareBundles, pruneStore } from './lambda-bundles.ts';

let dir: string;
let root: string;
const spec: FunctionSpec = {
  id: 'Probe',
  entry: 'fns/probe.ts',
  handler: 'handler',
  description: 'probe',
  timeoutSeconds: 3,
};
const other: FunctionSpec = { ...spec, id: 'Other', entry: 'fns/other.ts' };
const project = () => ({ root, functions: [spec, other] });
const stores = (home: string) => [join(dir, home, 'bundles'), join(dir, 'shared')];

async function call(file: string): Promise<unknown> {
  // A query string per import: each bundle version is a new module.
  const mod = (await import(`${pathToFileURL(file).href}?${Date.now()}`)) as { handler: () => unknown };
  return mod.handler();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-bundles-'));
  root = join(dir, 'project');
  await mkdir(join(root, 'fns'), { recursive: true });
  await writeFile(join(root, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(
    join(root, 'fns', 'probe.ts'),
    "import { answer } from './answer.ts';\nexport const handler = (): string => answer;\n",
  );
  await writeFile(join(root, 'fns', 'answer.ts'), "export const answer: string = 'one';\n");
  await writeFile(join(root, 'fns', 'other.ts'), "export const handler = (): string => 'other';\n");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('Lambda bundles', () => {
  it('builds once, then takes the bundle from the cache while no input changed', async () => {
    const first = await prepareBundles(stores('a'), project());
    expect(first.built).toEqual(['Probe', 'Other']);
    const bundle = first.bundles.get('Probe');
    expect(bundle?.file).toBe(join(dir, 'a', 'bundles', bundle?.key ?? '', BUNDLE_FILE));
    expect(await call(bundle?.file ?? '')).toBe('one');

    const again = await prepareBundles(stores('a'), project());
    expect(again.built).toEqual([]);
    expect(again.bundles.get('Probe')).toMatchObject({ key: bundle?.key, cached: true });

    // A fresh home (a test's) links the bundle from the shared store instead of building it.
    const fresh = await prepareBundles(stores('b'), project());
    expect(fresh.built).toEqual([]);
    expect(await readFile(fresh.bundles.get('Probe')?.file ?? '')).toEqual(
      await readFile(bundle?.file ?? ''),
    );
  });

  it('rebuilds when a file the bundle imports changes, and drops the stale bundle from the home', async () => {
    const before = (await prepareBundles(stores('a'), project())).bundles.get('Probe');
    await writeFile(join(root, 'fns', 'answer.ts'), "export const answer: string = 'two';\n");
    const after = await prepareBundles(stores('a'), project());
    // Only the function that imports the changed file.
    expect(after.built).toEqual(['Probe']);
    const bundle = after.bundles.get('Probe');
    expect(bundle?.key).not.toBe(before?.key);
    expect(await call(bundle?.file ?? '')).toBe('two');
    expect(await readdir(join(dir, 'a', 'bundles'))).not.toContain(before?.key);
  });

  it('builds each function, in one esbuild run, into the very bytes a run of its own gives', async () => {
    const { bundles } = await prepareBundles(stores('a'), project());
    for (const fn of [spec, other]) {
      const alone = join(dir, `alone-${fn.id}`);
      await buildBundle(fn.entry, alone, root);
      const file = bundles.get(fn.id)?.file ?? '';
      expect(await readFile(file)).toEqual(await readFile(join(alone, BUNDLE_FILE)));
      // Source maps name the sources relative to where the bundle is: compare the rest.
      const map = async (f: string) => {
        const { sources: _, ...rest } = JSON.parse(await readFile(f, 'utf8'));
        return rest;
      };
      expect(await map(`${file}.map`)).toEqual(await map(join(alone, `${BUNDLE_FILE}.map`)));
    }
  });

  it('keeps only the most recently used bundles in the shared store', async () => {
    const store = join(dir, 'prune');
    const keys = ['a', 'b', 'c'].map((c) => c.repeat(32));
    for (const [i, key] of keys.entries()) {
      await mkdir(join(store, key), { recursive: true });
      const at = new Date(Date.now() - (3 - i) * 60_000);
      await utimes(join(store, key), at, at);
    }
    await pruneStore(store, 2);
    expect((await readdir(store)).sort()).toEqual(keys.slice(1));
  });

  it('uses the deployed options: minified ESM with the createRequire banner and a source map', async () => {
    const bundle = (await prepareBundles(stores('a'), project())).bundles.get('Probe');
    const code = await readFile(bundle?.file ?? '', 'utf8');
    expect(
      code.startsWith("import { createRequire } from 'node:module'; const require = createRequire("),
    ).toBe(true);
    expect(code).toContain('//# sourceMappingURL=index.mjs.map');
    expect(code).not.toContain('answer'); // minified: local names are gone
    expect(await readdir(join(dir, 'a', 'bundles', bundle?.key ?? ''))).toEqual([
      'index.mjs',
      'index.mjs.map',
    ]);
    expect(esbuildOptions(root)).toMatchObject({
      format: 'esm',
      minify: true,
      target: 'node22',
      absWorkingDir: root,
    });
  });
});
