/**
 * The `lifeboat` command as one esbuild bundle of cli/main.ts, for tests that run it many times.
 *
 * `bin/lifeboat.js` loads cli/main.ts through tsx: about 1.2 s of Node start, hooks and module
 * resolution per call on a 2-core machine, against about 0.4 s for the same code as one file.
 * The e2e files and the cli project call the command several hundred times, so a vitest global
 * setup ({@link setup}) builds the bundle once per run and hands its path to the test files
 * (`inject('lifeboatCli')`); {@link cliEntry} falls back to the launcher when there is none.
 * The launcher itself stays covered: test/cli/launcher.test.ts runs it, and every `local` and
 * `runner` command goes through it (they start tsx children found with `import.meta.resolve`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { inject } from 'vitest';
import type { TestProject } from 'vitest/node';
import { PROJECT_ROOT } from '#local/functions.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Absolute path of the CLI bundle built by the global setup ('' when none). */
    lifeboatCli: string;
  }
}

/** The launcher users run. */
export const LAUNCHER = join(PROJECT_ROOT, 'bin', 'lifeboat.js');

/** Commands that must run through the launcher (they resolve tsx and start children with it). */
const LAUNCHER_ONLY = new Set(['local', 'runner']);

/**
 * Builds cli/main.ts into `outDir/lifeboat.mjs`. `import.meta.url` is the URL of cli/main.ts, so
 * every path the code derives from it (PROJECT_ROOT, package.json, createRequire) is the one the
 * launcher gives; CommonJS dependencies get a `require` through the same banner the Lambdas use.
 */
export async function buildCliBundle(outDir: string): Promise<string> {
  const file = join(outDir, 'lifeboat.mjs');
  await build({
    entryPoints: [join(PROJECT_ROOT, 'cli', 'main.ts')],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(PROJECT_ROOT, 'cli', 'main.ts')).href) },
    banner: {
      // Aliased: the bundle may import createRequire itself (cli/progress.ts does).
      js: "import { createRequire as lifeboatCreateRequire } from 'node:module'; const require = lifeboatCreateRequire(import.meta.url);",
    },
    absWorkingDir: PROJECT_ROOT,
    logLevel: 'silent',
  });
  return file;
}

/**
 * vitest global setup: builds the bundle once for the run and provides its path.
 * `LIFEBOAT_TEST_CLI=launcher` runs every call through bin/lifeboat.js instead (to compare).
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.LIFEBOAT_TEST_CLI === 'launcher') {
    project.provide('lifeboatCli', '');
    return async () => {};
  }
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-cli-bundle-'));
  project.provide('lifeboatCli', await buildCliBundle(dir));
  return () => rm(dir, { recursive: true, force: true });
}

/** The script to run `lifeboat ...args` with: the bundle when provided, else the launcher. */
export function cliEntry(args: readonly string[]): string {
  if (LAUNCHER_ONLY.has(args[0] ?? '')) return LAUNCHER;
  let bundle = '';
  try {
    bundle = inject('lifeboatCli') ?? '';
  } catch {
    // Not under vitest's runner with the setup (a helper imported elsewhere).
  }
  return bundle || LAUNCHER;
}
