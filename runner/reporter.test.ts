import { describe, expect, it } from 'vitest';
import { NotFound } from '#core/errors.ts';
import { ExecError } from '#drivers/exec.ts';
import { silentLogger } from '#runner/log.ts';
import { MAX_OUTPUT_BYTES, Reporter, shapeFailure } from '#runner/reporter.ts';
import { awsError, backupTask, FakeTaskTokens, fakeRunner, until } from './testing/fakes.ts';

describe('failure shaping', () => {
  it('reports the typed error name as Error and its message as Cause, never a stack', () => {
    const shaped = shapeFailure(new NotFound('VM 7 does not exist'));
    expect(shaped).toEqual({ error: 'NotFound', cause: 'VM 7 does not exist' });
    expect(shaped.cause).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('masks secret values a tool echoed into its stderr', () => {
    const error = new ExecError(
      'restic backup',
      1,
      undefined,
      'Fatal: wrong password hunter2-secret for repo',
    );
    const shaped = shapeFailure(error, ['hunter2-secret']);
    expect(shaped.error).toBe('ExecError');
    expect(shaped.cause).toContain('restic backup failed (exit 1)');
    expect(shaped.cause).not.toContain('hunter2-secret');
    expect(shaped.cause).toContain('***');
  });

  it('keeps causes short enough for SendTaskFailure', () => {
    const shaped = shapeFailure(new Error('x'.repeat(50_000)));
    expect(shaped.cause.length).toBeLessThanOrEqual(4096);
  });

  it('turns a non-Error throw into Error with its text', () => {
    expect(shapeFailure('boom')).toEqual({ error: 'Error', cause: 'boom' });
  });
});

describe('reporter', () => {
  it('fails the task with ResultTooLarge instead of sending an output over 256 KiB', async () => {
    const tokens = new FakeTaskTokens();
    const reporter = new Reporter(tokens, silentLogger, 1);
    await reporter.succeed('t', { template: 'x'.repeat(MAX_OUTPUT_BYTES) });
    expect(tokens.answers()).toEqual([
      {
        call: 'failure',
        token: 't',
        error: 'ResultTooLarge',
        cause: expect.stringMatching(/over the 262144-byte limit/),
      },
    ]);
  });

  it('retries an answer after a throttle, and drops one whose execution is gone', async () => {
    const tokens = new FakeTaskTokens();
    const reporter = new Reporter(tokens, silentLogger, 1);
    tokens.failNext.push(awsError('ThrottlingException'));
    expect(await reporter.succeed('t1', { a: 1 })).toBe('sent');
    expect(tokens.answers()).toEqual([{ call: 'success', token: 't1', output: { a: 1 } }]);
    tokens.gone.add('t2');
    expect(await reporter.fail('t2', new Error('late'))).toBe('gone');
  });
});

describe('heartbeat', () => {
  it('aborts the running task when the heartbeat answers TaskTimedOut, and reports TaskAborted', async () => {
    let sawAbort = false;
    const r = await fakeRunner({
      run: (_task, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            reject(new Error('restic killed by SIGTERM'));
          });
        }),
    });
    try {
      // heartbeatSeconds 3: a heartbeat every second.
      await r.executor.accept(backupTask({ heartbeatSeconds: 3, token: 'hb' }));
      r.tokens.gone.add('hb');
      await until(() => r.executor.size === 0, 5000);
      expect(sawAbort).toBe(true);
      expect(r.tokens.calls.filter((c) => c.call === 'heartbeat').length).toBeGreaterThanOrEqual(1);
      expect(r.journal.get('17/RunOnHost')).toMatchObject({
        state: 'failed',
        error: {
          name: 'TaskAborted',
          message: expect.stringMatching(/no longer waits for this task \(TaskTimedOut\)/),
        },
      });
    } finally {
      await r.remove();
    }
  });

  it('sends heartbeats while a task works and keeps it running when they succeed', async () => {
    const r = await fakeRunner({
      run: () => new Promise((resolve) => setTimeout(() => resolve({ ok: 1 }), 2300)),
    });
    try {
      await r.executor.accept(backupTask({ heartbeatSeconds: 3, token: 'alive' }));
      await until(() => r.tokens.answers().length === 1, 5000);
      // One heartbeat before the task starts (is anyone waiting?), then one per second.
      expect(r.tokens.calls.filter((c) => c.call === 'heartbeat')).toHaveLength(3);
      expect(r.tokens.answers()).toEqual([{ call: 'success', token: 'alive', output: { ok: 1 } }]);
    } finally {
      await r.remove();
    }
  });
});
