/**
 * bin/lifeboat.js: works from any cwd and through a symlink, and re-executes the project's
 * Node 22 when an older Node (Debian's 20) starts it, keeping argv and the exit code.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, runCli, tempHome } from './run-cli.ts';

const SYSTEM_NODE = '/usr/bin/node';
const systemNodeIsOld =
  existsSync(SYSTEM_NODE) &&
  Number(execFileSync(SYSTEM_NODE, ['-p', 'process.versions.node.split(".")[0]'])) < 22;

describe('bin/lifeboat.js', () => {
  it('runs through a symlink from another folder', async () => {
    const folder = tempHome();
    const link = join(folder, 'lifeboat');
    symlinkSync(BIN, link);
    const result = await runCli(['--version'], { cwd: folder, bin: link });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.runIf(systemNodeIsOld)('re-executes Node 22 under an old Node and keeps the exit code', async () => {
    const ok = await runCli(['vm', '--help'], { node: SYSTEM_NODE });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/^Usage: lifeboat vm/);
    const bad = await runCli(['vm', 'show', 'x'], { node: SYSTEM_NODE });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^lifeboat: .*'x' is invalid/);
  });
});
