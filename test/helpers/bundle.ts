/**
 * Bundles a module as `cdk deploy` bundles a Lambda: esbuild with the options infra/functions.ts
 * gives every NodejsFunction (BUNDLING), translated by local/lambda-bundles.ts, the one
 * translation local mode builds its bundles with too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FUNCTIONS } from '#functions/manifest.ts';
import { BUNDLE_FILE, buildBundle, bundleStores, prepareBundles } from '#local/lambda-bundles.ts';

/** A bundle written to a scratch folder, imported back. */
export interface Bundle<T = Record<string, unknown>> {
  module: T;
  file: string;
  remove(): Promise<void>;
}

/** Bundles `entry` (relative to the project root) with the deployed options and imports it. */
export async function bundleModule<T = Record<string, unknown>>(entry: string): Promise<Bundle<T>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-bundle-'));
  const file = path.join(dir, BUNDLE_FILE);
  await buildBundle(entry, dir);
  const module = (await import(pathToFileURL(file).href)) as T;
  return { module, file, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Bundles the manifest's function `id` (`Api`, `AdmitBackup`, ...) and returns its handler. */
export async function bundleFunction<H = (event: unknown, context?: unknown) => Promise<unknown>>(
  id: string,
): Promise<Bundle<Record<string, unknown>> & { handler: H }> {
  const spec = FUNCTIONS.find((f) => f.id === id);
  if (!spec) throw new Error(`no function ${id} in functions/manifest.ts`);
  const bundle = await bundleModule(spec.entry);
  return { ...bundle, handler: bundle.module[spec.handler] as H };
}

/**
 * The handlers of the manifest's functions `ids`, from the bundles local mode runs: the same
 * build (local/lambda-bundles.ts, the deployed options), taken from the checkout's shared store
 * when a local stack of this run (or an earlier one) already built them, else built and put
 * there for the next one. Each call imports its own copies (fresh modules, as cold Lambdas).
 */
export async function bundleFunctions<H = (event: unknown, context?: unknown) => Promise<unknown>>(
  ids: readonly string[],
): Promise<{ handlers: H[]; remove(): Promise<void> }> {
  const home = await mkdtemp(path.join(tmpdir(), 'lifeboat-bundles-'));
  const remove = () => rm(home, { recursive: true, force: true });
  try {
    const { bundles } = await prepareBundles(bundleStores(home));
    const handlers = await Promise.all(
      ids.map(async (id) => {
        const spec = FUNCTIONS.find((f) => f.id === id);
        const bundle = bundles.get(id);
        if (!spec || !bundle) throw new Error(`no function ${id} in functions/manifest.ts`);
        const module = (await import(pathToFileURL(bundle.file).href)) as Record<string, unknown>;
        return module[spec.handler] as H;
      }),
    );
    return { handlers, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
