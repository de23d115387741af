/**
 * Integration tests' `restic`: a shim first on PATH (for the tests and every process they start:
 * runners, local stacks) that execs the real restic, except for `init`: a new repository is
 * created by test/helpers/restic-cheap-key.mjs in restic's format with a key under cheap scrypt
 * parameters. restic 0.14 spends about 3 s of CPU calibrating its key derivation at init and
 * half a second deriving it again in every later process that opens the repository: hundreds of
 * times a suite, which was most of the restic tests' time. Nothing else changes: the same binary
 * reads and writes the same format.
 * Installed by test/helpers/setup-restic-shim.ts, a setup file of the `integration` project
 * (vitest.config.ts); the benchmarks do not use it. LIFEBOAT_TEST_RESTIC_KDF=real leaves restic's own key in place.
 */
import { createHash } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('./restic-cheap-key.mjs', import.meta.url));
/** One folder per checkout: two checkouts' suites on one machine never rewrite each other's shim. */
const SHIM_DIR = `/tmp/lifeboat-test-restic-shim-${createHash('sha256').update(FIXTURE).digest('hex').slice(0, 12)}`;

/** The shim's text: `init` goes to the fixture (which creates the repository), anything else to restic. */
export function shimScript(realRestic: string, node: string, fixture: string): string {
  return [
    '#!/bin/sh',
    '# Written by test/helpers/restic-shim.ts: the real restic; new repositories with cheap keys.',
    'for a in "$@"; do',
    `  if [ "$a" = init ]; then exec '${node}' '${fixture}' '${realRestic}' "$@"; fi`,
    'done',
    `exec '${realRestic}' "$@"`,
    '',
  ].join('\n');
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Writes the shim (when its text changed) and puts its folder first on PATH. */
export function installResticShim(): void {
  if (process.env.LIFEBOAT_TEST_RESTIC_KDF === 'real') return;
  const path = process.env.PATH ?? '';
  if (path.split(delimiter)[0] === SHIM_DIR) return;
  const realRestic = path
    .split(delimiter)
    .filter((dir) => dir.startsWith('/') && dir !== SHIM_DIR)
    .map((dir) => join(dir, 'restic'))
    .find(isExecutable);
  if (!realRestic) throw new Error('restic shim: no restic on PATH');
  const fixture = FIXTURE;
  for (const p of [realRestic, process.execPath, fixture]) {
    if (!p.startsWith('/') || p.includes("'")) throw new Error(`restic shim: unusable path ${p}`);
  }
  const text = shimScript(realRestic, process.execPath, fixture);
  const shim = join(SHIM_DIR, 'restic');
  mkdirSync(SHIM_DIR, { recursive: true });
  let current = '';
  try {
    current = readFileSync(shim, 'utf8');
  } catch {
    // not written yet
  }
  if (current !== text) {
    const next = `${shim}.${process.pid}`;
    writeFileSync(next, text);
    chmodSync(next, 0o755);
    renameSync(next, shim);
  }
  process.env.PATH = `${SHIM_DIR}${delimiter}${path}`;
}
