import { spawn } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import { keepRunning, spawnLogged } from './keeper.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A child that sleeps until killed (or exits at once with `exit`). */
const sleeper = (exit?: number) => () =>
  spawn(
    process.execPath,
    ['-e', exit === undefined ? 'setInterval(() => {}, 1e6)' : `process.exit(${exit})`],
    {
      stdio: 'ignore',
    },
  );

describe('keepRunning', () => {
  it('starts a SIGKILLed child again, with a new pid, and stops it for good on stop()', async () => {
    const pids: number[] = [];
    const lines: Record<string, unknown>[] = [];
    const kept = keepRunning({
      name: 'runner',
      start: sleeper(),
      onStart: (pid) => pids.push(pid),
      log: (entry) => lines.push(entry),
      backoff: { initialMs: 100, maxMs: 1000, resetAfterMs: 60_000 },
    });
    await vi.waitUntil(() => pids.length === 1);
    const first = pids[0] as number;
    process.kill(first, 'SIGKILL');
    await vi.waitUntil(() => pids.length === 2, { timeout: 5000 });
    const second = pids[1] as number;
    expect(second).not.toBe(first);
    expect(kept.pid).toBe(second);
    expect(alive(second)).toBe(true);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        msg: 'runner ended: starting it again',
        signal: 'SIGKILL',
        restartInMs: 100,
      }),
    ]);

    await kept.stop();
    expect(alive(second)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(pids).toHaveLength(2);
    expect(kept.pid).toBeUndefined();
  });

  it('waits longer after each quick failure (doubling, capped), and starts over after a long run', async () => {
    const starts: number[] = [];
    const delays: number[] = [];
    let quick = true;
    const kept = keepRunning({
      name: 'runner',
      start: () => {
        starts.push(Date.now());
        return quick ? sleeper(1)() : sleeper()();
      },
      log: (entry) => {
        if (typeof entry.restartInMs === 'number') delays.push(entry.restartInMs);
      },
      backoff: { initialMs: 50, maxMs: 600, resetAfterMs: 400 },
    });
    await vi.waitUntil(() => starts.length === 5, { timeout: 20_000, interval: 10 });
    quick = false;
    await vi.waitUntil(() => starts.length === 6, { timeout: 20_000, interval: 10 });
    // The delays it chose (a loaded machine stretches the child's own run, not these).
    expect(delays.slice(0, 5)).toEqual([50, 100, 200, 400, 600]);
    // Each restart came no sooner than its delay after the previous start.
    const gaps = starts.slice(1).map((at, i) => at - (starts[i] as number));
    for (const [i, gap] of gaps.entries()) expect(gap).toBeGreaterThanOrEqual(delays[i] as number);
    // Once the sixth child ran past resetAfterMs, a kill brings it back after the first delay.
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.kill(kept.pid as number, 'SIGKILL');
    await vi.waitUntil(() => starts.length === 7, { timeout: 10_000, interval: 10 });
    expect(delays[5]).toBe(50);
    await kept.stop();
    expect(kept.starts).toBe(7);
  });

  it('keeps trying a command that cannot start', async () => {
    const lines: Record<string, unknown>[] = [];
    const kept = keepRunning({
      name: 'runner',
      start: () => spawn('/nonexistent/lifeboat-runner', [], { stdio: 'ignore' }),
      log: (entry) => lines.push(entry),
      backoff: { initialMs: 20, maxMs: 40, resetAfterMs: 60_000 },
    });
    await vi.waitUntil(() => kept.starts >= 3, { timeout: 5000 });
    await kept.stop();
    expect(lines[0]).toMatchObject({
      msg: 'runner ended: starting it again',
      error: expect.stringContaining('ENOENT'),
    });
  });

  it('logs each line of the child whole, even when written in pieces', async () => {
    const lines: Record<string, unknown>[] = [];
    const script =
      "process.stdout.write('{\"a\":'); setTimeout(() => { process.stdout.write('1}\\nsecond\\n'); " +
      "process.stderr.write('last, no newline'); }, 100);";
    const child = spawnLogged(
      { name: 'runner', command: process.execPath, args: ['-e', script] },
      { PATH: process.env.PATH },
      (entry) => lines.push(entry),
    );
    await new Promise((resolve) => child.once('close', resolve));
    expect(lines.map((l) => l.msg).sort()).toEqual(['last, no newline', 'second', '{"a":1}']);
    expect(lines.every((l) => l.child === 'runner' && l.level === 'info')).toBe(true);
  });
});
