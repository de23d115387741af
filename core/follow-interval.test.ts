import { describe, expect, it } from 'vitest';
import { followIntervalMs } from './follow-interval.ts';

describe('followIntervalMs', () => {
  it('is a second for the first ten seconds, then a tenth of the time, at most 3 s', () => {
    expect([0, 9_999, 20_000, 25_000, 45_000, 3_600_000].map(followIntervalMs)).toEqual([
      1000, 1000, 2000, 2500, 3000, 3000,
    ]);
  });
  it('looks at an hour-long operation about 1,200 times, not 3,600', () => {
    let looks = 0;
    for (let t = 0; t < 3_600_000; t += followIntervalMs(t)) looks++;
    expect(looks).toBeGreaterThan(1190);
    expect(looks).toBeLessThan(1230);
  });
});
