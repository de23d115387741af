/**
 * Runs the real `lifeboat` command (bin/lifeboat.js, a child process) for the CLI's tests, with
 * a clean environment: no LIFEBOAT_* variables from the caller, LIFEBOAT_HOME an empty temp
 * folder unless given, and a short poll interval so --wait tests take milliseconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { cliEntry } from '../helpers/cli-bundle.ts';

/** Absolute path of the launcher under test. */
export const BIN = fileURLToPath(new URL('../../bin/lifeboat.js', import.meta.url));

/** What the command did. */
export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A fresh, empty LIFEBOAT_HOME. */
export function tempHome(): string {
  return mkdtempSync(join(tmpdir(), 'lifeboat-cli-test-'));
}

/**
 * Runs `lifeboat ...args` with `node` (the Node running the tests unless `node` is given) on
 * the launcher (or on `bin`, a symlink to it). With neither given, the run's CLI bundle is used
 * when there is one (the same cli/main.ts without tsx's start cost, test/helpers/cli-bundle.ts).
 */
export async function runCli(
  args: readonly string[],
  options: { env?: Record<string, string>; node?: string; cwd?: string; bin?: string } = {},
): Promise<CliResult> {
  // A home of this run's own unless the caller gives one: removed once the command ended.
  const ownHome = options.env?.LIFEBOAT_HOME === undefined ? tempHome() : undefined;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    ...(ownHome && { LIFEBOAT_HOME: ownHome }),
    LIFEBOAT_POLL_INTERVAL_MS: '20',
    ...options.env,
  };
  const script = options.bin ?? (options.node ? BIN : cliEntry(args));
  try {
    const result = await execa(options.node ?? process.execPath, [script, ...args], {
      env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      cwd: options.cwd ?? tmpdir(),
      timeout: 30_000,
    });
    return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
  } finally {
    if (ownHome) rmSync(ownHome, { recursive: true, force: true });
  }
}
