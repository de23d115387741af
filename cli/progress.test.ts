import { describe, expect, it } from 'vitest';
import { pollIntervalMs } from './progress.ts';

describe('--wait poll interval', () => {
  it('polls every second for the first ten seconds', () => {
    expect(pollIntervalMs(0, {})).toBe(1000);
    expect(pollIntervalMs(9_999, {})).toBe(1000);
  });
  it('then every tenth of the time waited, at most every 3 s (a 4 GiB backup: 40 s, about 20 polls instead of 40)', () => {
    expect(pollIntervalMs(20_000, {})).toBe(2000);
    expect(pollIntervalMs(45_000, {})).toBe(3000);
    expect(pollIntervalMs(3_600_000, {})).toBe(3000);
    let polls = 0;
    for (let t = 0; t < 40_000; t += pollIntervalMs(t, {})) polls++;
    expect(polls).toBeLessThanOrEqual(25);
  });
  it('is fixed by LIFEBOAT_POLL_INTERVAL_MS', () => {
    expect(pollIntervalMs(60_000, { LIFEBOAT_POLL_INTERVAL_MS: '20' })).toBe(20);
    expect(pollIntervalMs(60_000, { LIFEBOAT_POLL_INTERVAL_MS: 'x' })).toBe(3000);
  });
});
