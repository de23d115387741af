/** The scheduler loop wakes the dispatcher on its interval and never runs two wakes at once. */
import { describe, expect, it } from 'vitest';
import { startScheduler } from '#local/scheduler.ts';

describe('local scheduler', () => {
  it('wakes repeatedly, skips a tick while the previous wake still runs, and stops', async () => {
    let wakes = 0;
    let running = 0;
    let overlap = false;
    const errors: unknown[] = [];
    const stop = startScheduler({
      intervalSeconds: 0.02,
      wake: async () => {
        wakes++;
        running++;
        if (running > 1) overlap = true;
        await new Promise((r) => setTimeout(r, 50));
        running--;
        if (wakes === 2) throw new Error('dispatcher failed once');
      },
      log: (entry) => errors.push(entry),
    });
    await new Promise((r) => setTimeout(r, 400));
    stop();
    const seen = wakes;
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toBeGreaterThanOrEqual(3);
    expect(wakes).toBe(seen);
    expect(overlap).toBe(false);
    expect(errors).toEqual([
      expect.objectContaining({ level: 'error', error: 'Error: dispatcher failed once' }),
    ]);
  });
});
