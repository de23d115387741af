/**
 * The Lambda bundles local mode runs: each function of `functions/manifest.ts` built by esbuild
 * with the options `cdk deploy` uses (infra/functions.ts BUNDLING, translated flag for flag as
 * the CDK's own esbuild call does), so what runs locally is byte for byte the deployed code.
 *
 * Bundles are cached by content: a bundle's key hashes esbuild's version, the options, the
 * project root, the package and TypeScript settings, and the path and content of every input
 * file esbuild's metafile listed when it was built. A start re-hashes those inputs: unchanged,
 * the bundle is reused; any of them changed (a new import comes with a changed file), it is
 * rebuilt. The bundles live in `<home>/bundles/<key>/index.mjs`, hard-linked into a store shared
 * by every home of this checkout (`node_modules/.cache/lifeboat/bundles`) so fresh homes (tests)
 * start without rebuilding.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  copyFile,
  link,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join, relative } from 'node:path';
import { type BuildOptions, build, version as esbuildVersion } from 'esbuild';
import { FUNCTIONS, type FunctionSpec } from '#functions/manifest.ts';
import { BUNDLING, PROJECT_ROOT } from '#infra/functions.ts';

/** The file the CDK writes an ESM bundle to (its Lambda handler is `index.<export>`). */
export const BUNDLE_FILE = 'index.mjs';

/** The BUNDLING keys {@link esbuildOptions} translates; any other one fails the build. */
const TRANSLATED = new Set([
  'format',
  'target',
  'mainFields',
  'minify',
  'sourceMap',
  'externalModules',
  'banner',
]);

/**
 * The esbuild options the CDK derives from BUNDLING (aws-lambda-nodejs `buildEsbuildArgs`:
 * `--bundle --target --platform=node --format --outfile=index.mjs --minify --sourcemap
 * --external --banner:js --main-fields`, run in the project root). An option this does not
 * translate throws, so nothing silently builds other than what ships.
 */
export function esbuildOptions(root = PROJECT_ROOT): BuildOptions {
  const unknown = Object.keys(BUNDLING).filter((k) => !TRANSLATED.has(k));
  if (unknown.length)
    throw new Error(`local/lambda-bundles.ts does not translate BUNDLING.${unknown.join(', ')}`);
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
    // The CDK runs esbuild with the project root as working directory.
    absWorkingDir: root,
    logLevel: 'silent',
  };
}

/**
 * Build `entry` (relative to `root`, the project root by default) into `outdir/index.mjs`;
 * answers its input files, relative to `root`.
 */
export async function buildBundle(entry: string, outdir: string, root = PROJECT_ROOT): Promise<string[]> {
  const result = await build({
    ...esbuildOptions(root),
    entryPoints: [join(root, entry)],
    outfile: join(outdir, BUNDLE_FILE),
    metafile: true,
  });
  return Object.keys(result.metafile.inputs).sort();
}

/**
 * Build several entries in one esbuild run (the SDK they share is parsed once: about 4 times
 * faster than one run each). Without code splitting each output is the very file a run of its
 * own produces. Entry `id` goes to `outdir/<dir(id)>/index.mjs`; answers each one's input files
 * (relative to `root`): the files reachable from its entry in the metafile's import graph, what
 * a run of its own would list.
 */
export async function buildBundles(
  entries: readonly { id: string; entry: string; dir: string }[],
  outdir: string,
  root = PROJECT_ROOT,
): Promise<Map<string, string[]>> {
  const { metafile } = await build({
    ...esbuildOptions(root),
    entryPoints: Object.fromEntries(entries.map((e) => [`${e.dir}/index`, join(root, e.entry)])),
    outdir,
    outExtension: { '.js': '.mjs' },
    metafile: true,
  });
  const reachable = (entry: string): string[] => {
    const seen = new Set<string>();
    const stack = [entry];
    for (let file = stack.pop(); file !== undefined; file = stack.pop()) {
      const input = metafile.inputs[file];
      if (!input || seen.has(file)) continue;
      seen.add(file);
      for (const i of input.imports) if (!i.external) stack.push(i.path);
    }
    return [...seen].sort();
  };
  return new Map(entries.map((e) => [e.id, reachable(relative(root, join(root, e.entry)))]));
}

/** Files outside the metafile that change how esbuild resolves or compiles. */
const SETTINGS_FILES = ['package.json', 'package-lock.json', 'tsconfig.json'];

/** Hashes file contents once per start (the SDK's files are shared by every function). */
class ContentHashes {
  private readonly memo = new Map<string, Promise<string>>();
  constructor(readonly root: string) {}
  of(file: string): Promise<string> {
    let hash = this.memo.get(file);
    if (!hash) {
      hash = readFile(join(this.root, file)).then(
        (data) => createHash('sha256').update(data).digest('hex'),
        () => 'absent',
      );
      this.memo.set(file, hash);
    }
    return hash;
  }
}

/** The key of a bundle of `entry` whose build read `inputs` (paths relative to the root). */
async function bundleKey(entry: string, inputs: readonly string[], hashes: ContentHashes): Promise<string> {
  const hash = createHash('sha256').update(
    JSON.stringify({ esbuild: esbuildVersion, options: esbuildOptions(hashes.root), entry }),
  );
  const files = [...SETTINGS_FILES, ...inputs];
  const contents = await Promise.all(files.map((f) => hashes.of(f)));
  for (const [i, f] of files.entries()) hash.update(`\n${f}\0${contents[i]}`);
  return hash.digest('hex').slice(0, 32);
}

/** What the last build of a function read: the inputs its key is computed from. */
interface InputsRecord {
  entry: string;
  inputs: string[];
}

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

/** Hard-link (else copy) `from` to `to`, atomically: a reader sees a whole file or none. */
async function linkFile(from: string, to: string): Promise<void> {
  const tmp = `${to}.${randomBytes(4).toString('hex')}.tmp`;
  await link(from, tmp).catch(() => copyFile(from, tmp));
  await rename(tmp, to);
}

/** Make `store/key/` hold the bundle found in `dir` (index.mjs last: its presence means complete). */
async function publish(dir: string, store: string, key: string): Promise<void> {
  const target = join(store, key);
  if (target === dir || (await exists(join(target, BUNDLE_FILE)))) return;
  await mkdir(target, { recursive: true, mode: 0o700 });
  const files = (await readdir(dir)).filter((f) => !f.endsWith('.tmp'));
  files.sort((a, b) => Number(a === BUNDLE_FILE) - Number(b === BUNDLE_FILE));
  for (const f of files) await linkFile(join(dir, f), join(target, f));
}

/** One function's bundle, ready to import. */
export interface FunctionBundle {
  id: string;
  /** Absolute path of `index.mjs`. */
  file: string;
  key: string;
  /** Taken from a cache (no esbuild run). */
  cached: boolean;
}

/** Where bundles are kept: the home's own folder first, then the checkout's shared store. */
export function bundleStores(home: string): string[] {
  return [join(home, 'bundles'), join(PROJECT_ROOT, 'node_modules', '.cache', 'lifeboat', 'bundles')];
}

/** Where the inputs of a function's last build are recorded (per checkout: their lists may differ). */
const recordFile = (store: string, root: string, id: string) =>
  join(store, 'inputs', `${createHash('sha256').update(root).digest('hex').slice(0, 8)}-${id}.json`);

async function readRecord(
  stores: readonly string[],
  root: string,
  spec: FunctionSpec,
): Promise<InputsRecord | undefined> {
  for (const store of stores) {
    try {
      const record = JSON.parse(await readFile(recordFile(store, root, spec.id), 'utf8')) as InputsRecord;
      if (record.entry === spec.entry && Array.isArray(record.inputs)) return record;
    } catch {
      // no record there
    }
  }
  return undefined;
}

async function writeRecord(store: string, root: string, spec: FunctionSpec, record: InputsRecord) {
  const file = recordFile(store, root, spec.id);
  await mkdir(join(store, 'inputs'), { recursive: true, mode: 0o700 });
  await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/** The bundle of one function from the first store holding its key, if its inputs are unchanged. */
async function cachedBundle(
  spec: FunctionSpec,
  stores: readonly string[],
  hashes: ContentHashes,
): Promise<FunctionBundle | undefined> {
  const [home] = stores;
  const record = await readRecord(stores, hashes.root, spec);
  if (!home || !record) return undefined;
  const key = await bundleKey(spec.entry, record.inputs, hashes);
  for (const store of stores) {
    if (!(await exists(join(store, key, BUNDLE_FILE)))) continue;
    try {
      await publish(join(store, key), home, key);
    } catch {
      continue; // pruned from the shared store meanwhile: build it
    }
    await touch(join(store, key));
    return { id: spec.id, file: join(home, key, BUNDLE_FILE), key, cached: true };
  }
  return undefined;
}

/** Mark a bundle as used now (the shared store keeps the most recently used ones). */
const touch = (dir: string) => {
  const now = new Date();
  return utimes(dir, now, now).catch(() => {});
};

/** Bundles the shared store keeps: about six builds of every function (some 350 MB). */
export const SHARED_STORE_KEEP = 60;

/**
 * Remove from a shared store all but its `keep` most recently used bundles: every source change
 * adds a bundle of each function it touches. Homes keep their own links to the bundles they use.
 */
export async function pruneStore(store: string, keep = SHARED_STORE_KEEP): Promise<void> {
  const entries = (await readdir(store).catch(() => [] as string[])).filter((e) => /^[0-9a-f]{32}$/.test(e));
  if (entries.length <= keep) return;
  const dated = await Promise.all(
    entries.map(async (e) => ({
      e,
      mtime: (await stat(join(store, e)).catch(() => undefined))?.mtimeMs ?? 0,
    })),
  );
  dated.sort((a, b) => b.mtime - a.mtime);
  for (const { e } of dated.slice(keep)) await rm(join(store, e), { recursive: true, force: true });
}

/**
 * Build `specs` in one run into the home (each in a folder of its own at the depth of
 * `<home>/<key>/`, so its source map's relative paths stay right once renamed there), then
 * publish each under its key in every store, with the record of its inputs.
 */
async function buildAll(
  specs: readonly FunctionSpec[],
  stores: readonly string[],
  hashes: ContentHashes,
): Promise<FunctionBundle[]> {
  const [home, ...shared] = stores;
  if (!home || !specs.length) return [];
  const root = hashes.root;
  const tag = randomBytes(4).toString('hex');
  const entries = specs.map((spec) => ({ id: spec.id, entry: spec.entry, dir: `.build-${tag}-${spec.id}` }));
  try {
    const inputs = await buildBundles(entries, home, root);
    return await Promise.all(
      specs.map(async (spec, i) => {
        const dir = join(home, entries[i]?.dir ?? '');
        const files = inputs.get(spec.id) ?? [];
        const key = await bundleKey(spec.entry, files, hashes);
        await publish(dir, home, key);
        await writeRecord(home, root, spec, { entry: spec.entry, inputs: files });
        for (const store of shared) {
          // A read-only checkout only loses the sharing between homes.
          await publish(join(home, key), store, key).catch(() => {});
          await touch(join(store, key));
          await writeRecord(store, root, spec, { entry: spec.entry, inputs: files }).catch(() => {});
        }
        return { id: spec.id, file: join(home, key, BUNDLE_FILE), key, cached: false };
      }),
    );
  } finally {
    await Promise.all(entries.map((e) => rm(join(home, e.dir), { recursive: true, force: true })));
  }
}

/**
 * The bundle of every function of the manifest, cached or built (in parallel: esbuild runs its
 * builds on its own threads). Bundles of the home that no function uses any more are removed.
 * `root` and `functions` are the project's own unless given (tests use a scratch project).
 */
export async function prepareBundles(
  stores: readonly string[],
  project: { root: string; functions: readonly FunctionSpec[] } = {
    root: PROJECT_ROOT,
    functions: FUNCTIONS,
  },
): Promise<{ bundles: Map<string, FunctionBundle>; built: string[] }> {
  const [home] = stores;
  if (!home) throw new Error('no bundle store');
  await mkdir(home, { recursive: true, mode: 0o700 });
  const hashes = new ContentHashes(project.root);
  const cached = await Promise.all(project.functions.map((spec) => cachedBundle(spec, stores, hashes)));
  const built = await buildAll(
    project.functions.filter((_, i) => !cached[i]),
    stores,
    hashes,
  );
  const list = project.functions.map((spec, i) => {
    const bundle = cached[i] ?? built.find((b) => b.id === spec.id);
    if (!bundle) throw new Error(`no bundle of ${spec.id}`);
    return bundle;
  });
  const used = new Set(list.map((b) => b.key));
  for (const entry of await readdir(home)) {
    if (entry !== 'inputs' && !used.has(entry)) await rm(join(home, entry), { recursive: true, force: true });
  }
  for (const store of stores.slice(1)) await pruneStore(store).catch(() => {});
  return {
    bundles: new Map(list.map((b) => [b.id, b])),
    built: list.filter((b) => !b.cached).map((b) => b.id),
  };
}
