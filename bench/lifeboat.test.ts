import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pollIntervalMs } from '#cli/progress.ts';
import { VERIFYING_MESSAGE } from '#runner/tasks/backup.ts';
import {
  COMMIT_DONE_MESSAGE,
  followToEnd,
  logEntries,
  recordedInstants,
  timeLifeboatBackup,
} from './lifeboat.ts';
import type { Api } from './stack.ts';

const T0 = Date.parse('2026-12-06T20:00:00.000Z');
const iso = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

/** A runner line as the supervisor logs it: wrapped, read `lag` seconds after the runner wrote it. */
function runnerLine(seconds: number, message: string, fields: Record<string, unknown>, lag = 0.05): string {
  const inner = JSON.stringify({
    time: iso(seconds),
    level: 'info',
    message,
    component: 'runner',
    ...fields,
  });
  return JSON.stringify({ time: iso(seconds + lag), level: 'info', child: 'runner', msg: inner });
}

/** A Lambda's line (a worker thread of the supervisor: not wrapped). */
function lambdaLine(seconds: number, message: string, fields: Record<string, unknown>): string {
  return JSON.stringify({ time: iso(seconds), level: 'info', message, ...fields });
}

describe('the stack log', () => {
  it("keeps a child's own clock and message, and the supervisor's and the Lambdas' lines as they are", () => {
    const text = [
      runnerLine(30.456, VERIFYING_MESSAGE, { taskId: 'e-1/RunOnHost', disks: 1 }),
      lambdaLine(49.876, COMMIT_DONE_MESSAGE, { executionId: 'e-1' }),
      JSON.stringify({ time: iso(1), level: 'info', child: 'runner', msg: 'plain text from the runner' }),
      JSON.stringify({ time: iso(2), level: 'info', msg: 'control plane ready' }),
      'not a JSON line',
      '',
    ].join('\n');
    expect(logEntries(text).map((e) => [e.at - T0, e.child, e.message])).toEqual([
      [30_456, 'runner', VERIFYING_MESSAGE],
      [49_876, undefined, COMMIT_DONE_MESSAGE],
      [1000, 'runner', 'plain text from the runner'],
      [2000, undefined, 'control plane ready'],
    ]);
  });
});

describe('recorded instants of a backup', () => {
  const log = logEntries(
    [
      // An earlier backup's lines, and another execution's.
      lambdaLine(-5, COMMIT_DONE_MESSAGE, { executionId: 'e-1' }),
      runnerLine(20, VERIFYING_MESSAGE, { taskId: 'e-2/RunOnHost' }),
      lambdaLine(21, COMMIT_DONE_MESSAGE, { executionId: 'e-2' }),
      runnerLine(30.456, VERIFYING_MESSAGE, { taskId: 'e-1/RunOnHost', disks: 1 }),
      lambdaLine(49.876, COMMIT_DONE_MESSAGE, { executionId: 'e-1' }),
    ].join('\n'),
  );

  it('a plain FULL image: READY from the Commit Lambda line, the read-back from the runner line to verifiedAt', () => {
    const image = { id: 9, state: 'READY', verifiedAt: iso(44.987), increments: [] };
    expect(recordedInstants('e-1', T0, image, log)).toEqual({
      ready: T0 + 49_876,
      verifying: T0 + 30_456,
      verified: T0 + 44_987,
    });
  });

  it("a chain: its last point's date and verifiedAt, not the image's older verifiedAt", () => {
    const image = {
      id: 9,
      state: 'READY',
      verifiedAt: iso(-100),
      increments: [
        { id: 0, type: 'FULL', date: iso(-90), verifiedAt: iso(-100) },
        { id: 1, type: 'INCREMENT', date: iso(49.5), verifiedAt: iso(44.987) },
      ],
    };
    expect(recordedInstants('e-1', T0, image, log)).toEqual({
      ready: T0 + 49_500,
      verifying: T0 + 30_456,
      verified: T0 + 44_987,
    });
  });

  it('nothing recorded since the request: nothing answered', () => {
    const image = { id: 9, state: 'READY', verifiedAt: iso(-100), increments: [] };
    expect(recordedInstants('e-1', T0 + 60_000, image, log)).toEqual({});
  });
});

describe('following an execution', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllEnvs();
  });

  it("polls at the CLI's --wait interval (cli/progress.ts), not every 100 ms", async () => {
    vi.stubEnv('LIFEBOAT_POLL_INTERVAL_MS', '');
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    const polls: number[] = [];
    const api: Api = async () => {
      polls.push(Date.now() - T0);
      return { state: Date.now() - T0 >= 70_000 ? 'SUCCEEDED' : 'RUNNING' };
    };
    const followed = followToEnd(api, 'e-1', T0);
    await vi.runAllTimersAsync();
    expect((await followed).state).toBe('SUCCEEDED');
    const gaps = polls.slice(1).map((t, i) => t - (polls[i] as number));
    expect(gaps).toEqual(polls.slice(0, -1).map((t) => pollIntervalMs(t, {})));
    // Every second for ten seconds, then at most every 3 s: 36 polls for a 70 s backup, not 700.
    expect(gaps.slice(0, 10).every((g) => g === 1000)).toBe(true);
    expect(Math.max(...gaps)).toBe(3000);
    expect(polls.length).toBe(36);
  });
});

describe('a timed Lifeboat backup', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-bench-test-'));
  });
  afterEach(async () => {
    vi.useRealTimers();
    vi.unstubAllEnvs();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * A backup requested at T0: uploading from 2 s, verifying from 30.456 s to 44.987 s (seen by
   * the polls at their own coarse instants), Commit at 49.876 s, Release at 50.321 s.
   */
  function fakeApi(calls: string[]): Api {
    return async (method, path) => {
      calls.push(`${method} ${path}`);
      const t = (Date.now() - T0) / 1000;
      if (method === 'POST') return { id: 'e-1', state: 'QUEUED' };
      if (path === '/images/9') return { id: 9, state: 'READY', verifiedAt: iso(44.987), increments: [] };
      if (t >= 50.321) return { state: 'SUCCEEDED', phase: 'done', imageId: 9, endedAt: iso(50.321) };
      const phase = t < 2 ? 'preparing' : t < 30.456 ? 'uploading' : t < 44.987 ? 'verifying' : 'completing';
      return { state: 'RUNNING', phase, imageId: 9, bytesDone: t < 2 ? 0 : 1 };
    };
  }

  it('takes READY, SUCCEEDED and the read-back from the recorded instants, to the millisecond', async () => {
    vi.stubEnv('LIFEBOAT_POLL_INTERVAL_MS', '');
    const logPath = join(dir, 'supervisor.log');
    await writeFile(
      logPath,
      [
        runnerLine(30.456, VERIFYING_MESSAGE, { taskId: 'e-1/RunOnHost', disks: 1 }),
        lambdaLine(49.876, COMMIT_DONE_MESSAGE, { executionId: 'e-1' }),
        '',
      ].join('\n'),
    );
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    vi.setSystemTime(T0);
    const calls: string[] = [];
    let settled = false;
    const stored: number[] = [];
    const timed = timeLifeboatBackup({ api: fakeApi(calls), logPath }, 3, 100, {
      onStored: () => stored.push((Date.now() - T0) / 1000),
    }).finally(() => {
      settled = true;
    });
    while (!settled) await vi.advanceTimersByTimeAsync(250);
    const run = await timed;
    expect(run).toMatchObject({
      seconds: 49.876,
      executionSeconds: 50.321,
      verifySeconds: 14.531,
      imageId: 9,
      executionId: 'e-1',
      approximate: [],
    });
    // The follow's polls and one read of the image at the end: no image polls meanwhile.
    expect(calls.filter((c) => c.startsWith('GET /images'))).toEqual(['GET /images/9']);
    expect(calls[0]).toBe('POST /vms/3/backup');
    // The polls' marks stay, coarse, beside the recorded ones, in time order.
    const what = run.timeline.map((m) => m.what);
    expect(what).toEqual(
      expect.arrayContaining([
        'execution RUNNING/verifying (poll)',
        'verifying started (runner log)',
        'verified (image verifiedAt)',
        'image 9 READY (Commit)',
        'execution SUCCEEDED (endedAt)',
      ]),
    );
    const ts = run.timeline.map((m) => m.t);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    expect(run.timeline.find((m) => m.what === 'verifying started (runner log)')?.t).toBe(30.456);
    // The data stored: told once, at the first poll that saw the verification (3 s polls by then).
    expect(stored).toHaveLength(1);
    expect(stored[0]).toBeGreaterThanOrEqual(30.456);
    expect(stored[0]).toBeLessThan(30.456 + 3.1);
  });

  it('without the log lines, approximates READY by endedAt and the read-back by the polls, and says so', async () => {
    vi.stubEnv('LIFEBOAT_POLL_INTERVAL_MS', '');
    const logPath = join(dir, 'absent.log');
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    vi.setSystemTime(T0);
    let settled = false;
    const timed = timeLifeboatBackup({ api: fakeApi([]), logPath }, 3, 100).finally(() => {
      settled = true;
    });
    while (!settled) await vi.advanceTimersByTimeAsync(250);
    const run = await timed;
    expect(run.approximate).toEqual(['seconds', 'verifySeconds']);
    expect(run.seconds).toBe(50.321);
    // The polls (every 1 to 3 s) saw the phase from about 31 s to about 45 s.
    expect(run.verifySeconds).toBeGreaterThan(10);
    expect(run.verifySeconds).toBeLessThan(20);
  });

  it('throws when the backup does not succeed', async () => {
    vi.stubEnv('LIFEBOAT_POLL_INTERVAL_MS', '1');
    const api: Api = async (method) =>
      method === 'POST'
        ? { id: 'e-1', state: 'QUEUED' }
        : { state: 'FAILED', phase: 'failed', error: { name: 'DiskMismatch', message: 'no' } };
    await expect(timeLifeboatBackup({ api, logPath: join(dir, 'x.log') }, 3, 100)).rejects.toThrow(
      /ended FAILED: .*DiskMismatch/,
    );
  });
});
