/**
 * Integration tests' `restic`: a shim first on PATH (for the tests and every process they start:
 * runners, local stacks) that execs the real restic, and after a successful `init` rewrites the
 * new repository's key with cheap scrypt parameters (test/helpers/restic-cheap-key.mjs). restic
 * 0.14 calibrates its key derivation to about half a second of CPU at init, paid again by every
 * later restic process that opens the repository: hundreds of times a suite, which was most of
 * the restic tests' time. Nothing else changes: the same binary, format, master key and data.
 * Installed by test/helpers/setup-restic-shim.ts, a setup file of the `integration` project
 * (vitest.config.ts); the benchmarks do not use it. LIFEBOAT_TEST_RESTIC_KDF=real leaves restic's own key in place.
 */
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

const SHIM_DIR = '/tmp/lifeboat-test-restic-shim';

/** The shim's text: `init` runs restic then the key rewrite; anything else becomes restic. */
export function shimScript(realRestic: string, node: string, rewrite: string): string {
  return [
    '#!/bin/sh',
    '# Written by test/helpers/restic-shim.ts: the real restic, with cheap keys for new repositories.',
    'for a in "$@"; do',
    '  if [ "$a" = init ]; then',
    `    '${realRestic}' "$@" || exit $?`,
    `    exec '${node}' '${rewrite}' "$@"`,
    '  fi',
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
  const rewrite = fileURLToPath(new URL('./restic-cheap-key.mjs', import.meta.url));
  for (const p of [realRestic, process.execPath, rewrite]) {
    if (!p.startsWith('/') || p.includes("'")) throw new Error(`restic shim: unusable path ${p}`);
  }
  const text = shimScript(realRestic, process.execPath, rewrite);
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
