/**
 * Builds the web console (console/, React + Cloudscape) with Vite into web/, which the local
 * gateway serves at `/`. It rebuilds only when the console's sources or the locked dependencies
 * changed: a sha256 of them is kept in `web/.source-hash`, so `npm start` and the tests pay for a
 * build (tens of seconds on a small machine) once, not every time.
 * Run: `node --import tsx scripts/build-console.ts [--force]`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** The console's sources (Vite's root). */
export const CONSOLE_DIR = join(ROOT, 'console');
/** What the gateway serves: index.html and assets/. Git-ignored. */
export const WEB_DIR = join(ROOT, 'web');
const HASH_FILE = '.source-hash';

/** Every file under `dir`, sorted, as absolute paths. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * sha256 of what the build's output depends on: each console file (path and bytes), the lock
 * file (dependency versions) and this script (the Vite config). The console imports only types
 * from core/ (`import type`), which vanish at build: a change there needs no rebuild.
 */
export async function sourceHash(consoleDir = CONSOLE_DIR): Promise<string> {
  const hash = createHash('sha256');
  const files = [
    ...(await filesUnder(consoleDir)),
    join(ROOT, 'package-lock.json'),
    fileURLToPath(import.meta.url),
  ];
  for (const file of files) {
    hash.update(relative(ROOT, file)).update('\0');
    hash.update(await readFile(file)).update('\0');
  }
  return hash.digest('hex');
}

/** The hash the current web/ was built from, if any. */
async function builtHash(webDir: string): Promise<string | undefined> {
  try {
    if (!existsSync(join(webDir, 'index.html'))) return undefined;
    return (await readFile(join(webDir, HASH_FILE), 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/**
 * Build web/ unless it is up to date. The build goes to a fresh folder that then replaces web/,
 * so a gateway serving web/ meanwhile never sees half a build.
 */
export async function buildConsole(
  opts: { force?: boolean; consoleDir?: string; webDir?: string } = {},
): Promise<{ built: boolean; ms: number }> {
  const started = Date.now();
  const consoleDir = opts.consoleDir ?? CONSOLE_DIR;
  const webDir = opts.webDir ?? WEB_DIR;
  const hash = await sourceHash(consoleDir);
  if (!opts.force && (await builtHash(webDir)) === hash) return { built: false, ms: Date.now() - started };
  // Loaded only when building: vite and its plugin are heavy, and not needed when up to date.
  const [{ build }, { default: react }] = await Promise.all([import('vite'), import('@vitejs/plugin-react')]);
  const out = `${webDir}.tmp-${randomUUID()}`;
  await rm(out, { recursive: true, force: true });
  await build({
    configFile: false,
    root: consoleDir,
    base: '/',
    logLevel: 'warn',
    plugins: [react()],
    build: { outDir: out, emptyOutDir: true, chunkSizeWarningLimit: 4096, reportCompressedSize: false },
  });
  await writeFile(join(out, HASH_FILE), `${hash}\n`);
  try {
    await rm(webDir, { recursive: true, force: true });
    await rename(out, webDir);
  } catch (err) {
    // Another build (`npm start` beside a test run) put its web/ there first, perhaps while this
    // one was removing the old (ENOTEMPTY): same sources, keep it.
    await rm(out, { recursive: true, force: true });
    if ((await builtHash(webDir)) !== hash) throw err;
  }
  return { built: true, ms: Date.now() - started };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { built, ms } = await buildConsole({ force: process.argv.includes('--force') });
  process.stderr.write(
    built ? `console: built web/ in ${(ms / 1000).toFixed(1)} s\n` : 'console: web/ is up to date\n',
  );
}
