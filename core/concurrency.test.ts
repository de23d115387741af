import { describe, expect, it } from 'vitest';
import { mapConcurrent } from './concurrency.ts';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('mapConcurrent', () => {
  it('answers in the list order with at most `limit` calls in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapConcurrent([30, 5, 20, 1, 10, 2], 3, async (ms, i) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await tick(ms);
      inFlight--;
      return `${i}:${ms}`;
    });
    expect(out).toEqual(['0:30', '1:5', '2:20', '3:1', '4:10', '5:2']);
    expect(most).toBe(3);
  });

  it('rejects with the first failure and starts nothing after it', async () => {
    const started: number[] = [];
    const map = mapConcurrent([1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      await tick(n === 2 ? 5 : 20);
      if (n === 2) throw new Error('two failed');
      return n;
    });
    await expect(map).rejects.toThrow('two failed');
    await tick(30);
    expect(started).toEqual([1, 2]);
  });

  it('answers an empty list at once and refuses a limit below one', async () => {
    expect(await mapConcurrent([], 4, async () => 1)).toEqual([]);
    await expect(mapConcurrent([1], 0, async (n) => n)).rejects.toThrow('positive integer');
  });
});
