import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { followIntervalMs } from '#core/follow-interval.ts';
import { silentLogger as silent } from './log.ts';
import { type ProgressFields, taskProgress } from './progress.ts';

describe('taskProgress', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes byte counts as often as the CLI polls: every second at first, every 3 s later', async () => {
    const writes: { at: number; fields: ProgressFields }[] = [];
    const progress = taskProgress(
      'exec-1/RunOnHost',
      async (executionId, fields) => {
        expect(executionId).toBe('exec-1');
        writes.push({ at: Date.now(), fields });
      },
      silent,
    );
    // A tool reporting its bytes every 100 ms for a minute.
    for (let t = 0; t < 60_000; t += 100) {
      progress.bytes(t * 1000, 60_000_000);
      await vi.advanceTimersByTimeAsync(100);
    }
    await progress.flush();
    const gaps = writes.slice(1).map((w, i) => w.at - (writes[i]?.at ?? 0));
    // Never sooner than the schedule allows at the time of the write before (but the last,
    // the flush at the task's end).
    for (const [i, gap] of gaps.slice(0, -1).entries()) {
      expect(gap).toBeGreaterThanOrEqual(followIntervalMs(writes[i]?.at ?? 0) - 100);
    }
    expect(gaps.slice(0, 5).every((g) => g <= 1100)).toBe(true);
    expect(gaps.at(-2)).toBe(3000);
    // 10 writes in the first ten seconds, about 20 in the next fifty: 60 at one a second.
    expect(writes.length).toBeGreaterThanOrEqual(28);
    expect(writes.length).toBeLessThanOrEqual(34);
    expect(writes.at(-1)?.fields.bytesDone).toBe(59_900_000);
  });

  it('writes a phase change at once, with the bytes pending', async () => {
    const writes: ProgressFields[] = [];
    const progress = taskProgress(
      'exec-2/RunOnHost',
      async (_, fields) => {
        writes.push(fields);
      },
      silent,
    );
    await vi.advanceTimersByTimeAsync(30_000);
    progress.bytes(10, 100);
    progress.bytes(20, 100);
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([{ bytesDone: 10, bytesTotal: 100 }]);
    progress.phase('verifying');
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([
      { bytesDone: 10, bytesTotal: 100 },
      { bytesDone: 20, bytesTotal: 100, phase: 'verifying' },
    ]);
  });
});
