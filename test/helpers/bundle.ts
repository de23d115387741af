/**
 * Bundles a module as `cdk deploy` bundles a Lambda: esbuild with the options infra/functions.ts
 * gives every NodejsFunction (BUNDLING), translated flag for flag as the CDK's own esbuild call
 * does (aws-lambda-nodejs bundling: `--bundle --platform=node --target --format --minify ...`).
 * An option this helper does not translate fails the bundle, so the test never silently builds
 * something other than what ships.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BuildOptions, build } from 'esbuild';
import { FUNCTIONS } from '#functions/manifest.ts';
import { BUNDLING, PROJECT_ROOT } from '#infra/functions.ts';

const TRANSLATED = new Set([
  'format',
  'target',
  'mainFields',
  'minify',
  'sourceMap',
  'externalModules',
  'banner',
]);

/** The esbuild options the CDK derives from BUNDLING. */
export function esbuildOptions(): BuildOptions {
  const unknown = Object.keys(BUNDLING).filter((k) => !TRANSLATED.has(k));
  if (unknown.length)
    throw new Error(`test/helpers/bundle.ts does not translate BUNDLING.${unknown.join(', ')}`);
  return {
    bundle: true,
    platform: 'node',
    target: BUNDLING.target,
    format: BUNDLING.format as BuildOptions['format'],
    minify: BUNDLING.minify,
    sourcemap: BUNDLING.sourceMap,
    external: [...BUNDLING.externalModules],
    banner: { js: BUNDLING.banner },
    mainFields: [...BUNDLING.mainFields],
    logLevel: 'silent',
  };
}

/** A bundle written to a scratch folder, imported back. */
export interface Bundle<T = Record<string, unknown>> {
  module: T;
  file: string;
  remove(): Promise<void>;
}

/** Bundles `entry` (relative to the project root) with the deployed options and imports it. */
export async function bundleModule<T = Record<string, unknown>>(entry: string): Promise<Bundle<T>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-bundle-'));
  const file = path.join(dir, 'index.mjs');
  await build({ ...esbuildOptions(), entryPoints: [path.join(PROJECT_ROOT, entry)], outfile: file });
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
