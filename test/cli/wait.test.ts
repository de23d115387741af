/**
 * `--wait` / `--follow`: the CLI polls the execution to its end, reports phase changes on stderr
 * (stderr is not a TTY here, so lines rather than a bar) and exits 0 only when it SUCCEEDED.
 */
import { describe, expect, it } from 'vitest';
import type { Execution } from '#core/model.ts';
import { useFakeApi } from './fake-api.ts';
import { execution } from './fixtures.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi('t');

/** A fake API whose execution 17 goes through `states`, one per poll, then stays at the last. */
function serveExecution(states: readonly Execution[]): Promise<Record<string, string>> {
  return api.serve({
    'POST /vms/3/backup': { status: 202, body: execution('QUEUED') },
    'POST /images/12/restore': { status: 202, body: execution('QUEUED', { kind: 'restore' }) },
    'GET /executions/17': (_request, hit) => ({
      status: 200,
      body: states[Math.min(hit, states.length) - 1],
    }),
  });
}

const RUNNING = execution('RUNNING', { phase: 'export', bytesDone: 1024, bytesTotal: 4096 });
const SUCCEEDED = execution('SUCCEEDED', { phase: 'done', bytesDone: 4096, bytesTotal: 4096, imageId: 12 });
const FAILED = execution('FAILED', {
  phase: 'export',
  error: { name: 'ExecError', message: 'restic exited with 1: repository is locked' },
});

describe('vm backup --wait', () => {
  it('exits 0 when the execution SUCCEEDED, with one stderr line per phase change', async () => {
    const env = await serveExecution([execution('QUEUED'), RUNNING, RUNNING, RUNNING, SUCCEEDED]);
    const result = await runCli(['vm', 'backup', '3', '-d', '100', '--wait'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('execution 17 SUCCEEDED (backup: VM 3, datastore 100, image 12)');
    const lines = result.stderr.split('\n');
    expect(lines.filter((line) => line.includes('RUNNING export'))).toHaveLength(1);
    expect(lines).toContain('execution 17: RUNNING export (1.0 KiB of 4.0 KiB)');
    expect(lines.at(-1)).toBe('execution 17: SUCCEEDED done (4.0 KiB of 4.0 KiB)');
  });

  it('exits 1 with the execution error on stderr when it FAILED', async () => {
    const env = await serveExecution([RUNNING, FAILED]);
    const result = await runCli(['vm', 'backup', '3', '-d', '100', '--wait'], { env });
    expect(result.exitCode).toBe(1);
    expect(result.stderr.split('\n').at(-1)).toBe(
      'lifeboat: execution 17 FAILED: ExecError: restic exited with 1: repository is locked',
    );
  });

  it('with --json prints only the final execution on stdout, and exits 1 when TIMED_OUT', async () => {
    const timedOut = execution('TIMED_OUT', {
      error: { name: 'States.HeartbeatTimeout', message: 'no heartbeat' },
    });
    const env = await serveExecution([RUNNING, timedOut]);
    const result = await runCli(['vm', 'backup', '3', '-d', '100', '--wait', '--json'], { env });
    expect(result.exitCode).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual(timedOut);
  });
});

describe('image restore --wait and execution show --follow', () => {
  it('image restore --wait exits 0 on SUCCEEDED', async () => {
    const env = await serveExecution([execution('SUCCEEDED', { kind: 'restore' })]);
    const result = await runCli(['image', 'restore', '12', '--wait', '--no-progress'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^execution 17 SUCCEEDED \(restore/);
  });

  it('execution show --follow exits 1 on FAILED', async () => {
    const env = await serveExecution([RUNNING, FAILED]);
    const result = await runCli(['execution', 'show', '17', '--follow'], { env });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/FAILED: ExecError/);
  });

  it('execution show without --follow exits 0 whatever the state', async () => {
    const env = await serveExecution([FAILED]);
    const result = await runCli(['execution', 'show', '17'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^ERROR:\s+ExecError: restic exited with 1/m);
  });
});
