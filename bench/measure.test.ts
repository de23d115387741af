import { describe, expect, it } from 'vitest';
import { DiskSampler, median, round } from './measure.ts';

describe('median', () => {
  it('takes the middle run of an odd count, whatever the order', () => {
    expect(median([61.2, 58.4, 70.9])).toBe(61.2);
  });
  it('averages the two middle runs of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
  it('refuses an empty list rather than answering NaN', () => {
    expect(() => median([])).toThrow('median of nothing');
  });
});

describe('round', () => {
  it('keeps the requested decimals', () => {
    expect(round(1.23456, 3)).toBe(1.235);
    expect(round(63.96, 1)).toBe(64);
  });
});

describe('DiskSampler', () => {
  it('reports the highest use seen while running, over the baseline taken before', async () => {
    const used = [1000, 1000, 1000, 1500, 4000, 2000];
    let i = 0;
    const sampler = new DiskSampler(async () => used[Math.min(i++, used.length - 1)] as number, 5);
    await sampler.start(3);
    while (i < used.length) await new Promise((r) => setTimeout(r, 5));
    const peak = await sampler.stop();
    expect(peak.baselineBytes).toBe(1000);
    expect(peak.peakExtraBytes).toBe(3000);
  });

  it('never reports less than zero when the filesystem shrinks meanwhile', async () => {
    let value = 5000;
    const sampler = new DiskSampler(async () => value, 5);
    await sampler.start(2);
    value = 1000;
    await new Promise((r) => setTimeout(r, 20));
    expect((await sampler.stop()).peakExtraBytes).toBe(0);
  });
});
