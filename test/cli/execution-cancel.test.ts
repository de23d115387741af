/**
 * `lifeboat execution cancel EXECID` against a fake API: what it sends and prints, the API's
 * refusals (an ended execution 409, an unknown one 404), bad input exit 2 with one line, and
 * its place in `--help`.
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { execution } from './fixtures.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();

const CANCELLED = execution('ABORTED', {
  phase: 'cancelled',
  endedAt: '2026-12-06T16:40:00.000Z',
  error: { name: 'Cancelled', message: 'cancelled by admin' },
});

describe('lifeboat execution cancel', () => {
  it('posts to /executions/{id}/cancel and prints the ended execution (the object with --json)', async () => {
    const env = await api.serve({ 'POST /executions/17/cancel': { status: 200, body: CANCELLED } });
    const plain = await runCli(['execution', 'cancel', '17'], { env });
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toBe('execution 17 ABORTED (backup: VM 3, datastore 100)');
    const json = await runCli(['execution', 'cancel', '17', '--json'], { env });
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(CANCELLED);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /executions/17/cancel',
      'POST /executions/17/cancel',
    ]);
    expect(api.requests[0]?.headers.authorization).toBe('Bearer tok-123');
  });

  it("answers the API's refusals with its message: an ended execution (409), an unknown one (404)", async () => {
    const env = await api.serve({
      'POST /executions/17/cancel': {
        status: 409,
        body: {
          error: 'Conflict',
          message: 'execution 17 already ended SUCCEEDED at 2026-12-06T16:00:00.000Z: nothing to cancel',
        },
      },
    });
    const ended = await runCli(['execution', 'cancel', '17'], { env });
    expect(ended.exitCode).toBe(2);
    expect(ended.stdout).toBe('');
    expect(ended.stderr).toBe(
      'lifeboat: execution 17 already ended SUCCEEDED at 2026-12-06T16:00:00.000Z: nothing to cancel',
    );
    const unknown = await runCli(['execution', 'cancel', '99'], { env });
    expect(unknown.exitCode).not.toBe(0);
    expect(unknown.stderr.split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/^lifeboat: .*not a route|^lifeboat: .*99/);
  });

  it.each([
    [['execution', 'cancel'], /missing required argument 'EXECID'/],
    [['execution', 'cancel', '../x'], /is invalid for argument 'EXECID'/],
    [['execution', 'cancel', '17', '18'], /too many arguments/],
  ])('lifeboat %j exits 2 with one line and calls nothing', async (args, message) => {
    const env = await api.serve({});
    const result = await runCli(args, { env });
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(api.requests).toEqual([]);
  });

  it('is listed in the help of `lifeboat execution`', async () => {
    const result = await runCli(['execution', '--help']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^\s+cancel <EXECID>\s+cancel a queued or running execution/m);
  });
});
