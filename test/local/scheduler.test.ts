/**
 * The scheduler loop wakes the dispatcher on its interval and never runs two wakes at once; it
 * also wakes it as soon as a scheduled action is due, not only on the interval.
 */
import { describe, expect, it } from 'vitest';
import { startScheduler } from '#local/scheduler.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('local scheduler', () => {
  it('wakes repeatedly, skips a tick while the previous wake still runs, and stops', async () => {
    let wakes = 0;
    let running = 0;
    let overlap = false;
    const errors: unknown[] = [];
    const stop = startScheduler({
      intervalSeconds: 0.02,
      nextDue: async () => undefined,
      wake: async () => {
        wakes++;
        running++;
        if (running > 1) overlap = true;
        await sleep(50);
        running--;
        if (wakes === 2) throw new Error('dispatcher failed once');
      },
      log: (entry) => errors.push(entry),
    });
    await sleep(400);
    stop();
    const seen = wakes;
    await sleep(100);
    expect(seen).toBeGreaterThanOrEqual(3);
    expect(wakes).toBe(seen);
    expect(overlap).toBe(false);
    expect(errors).toEqual([
      expect.objectContaining({ level: 'error', error: 'Error: dispatcher failed once' }),
    ]);
  });

  it('wakes the dispatcher when a scheduled action is due, long before the interval', async () => {
    let due: string | undefined = new Date(Date.now() + 150).toISOString();
    const woken: number[] = [];
    const started = Date.now();
    const stop = startScheduler({
      intervalSeconds: 3600,
      dueCheckSeconds: 0.05,
      nextDue: async () => due,
      wake: () => {
        woken.push(Date.now() - started);
        // The dispatcher fired it: the next run is far away.
        due = new Date(Date.now() + 3_600_000).toISOString();
      },
    });
    await sleep(500);
    stop();
    expect(woken).toHaveLength(1);
    expect(woken[0]).toBeGreaterThanOrEqual(150);
    expect(woken[0]).toBeLessThan(400);
  });
});
