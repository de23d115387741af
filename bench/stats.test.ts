import { describe, expect, it } from 'vitest';
import { interleave, ratio, Samples, spread } from './stats.ts';

describe('spread', () => {
  it('reports the median with the min and max around it, runs kept in their order', () => {
    expect(spread([41.2, 54.1, 39.9])).toEqual({
      median: 41.2,
      min: 39.9,
      max: 54.1,
      runs: [41.2, 54.1, 39.9],
    });
  });
  it('is not moved by one noisy sample, as a single run would be', () => {
    expect(spread([20.4, 15.7, 16.1]).median).toBe(16.1);
  });
  it('refuses an empty list rather than answering NaN', () => {
    expect(() => spread([])).toThrow('spread of nothing');
  });
});

describe('ratio', () => {
  it('divides and keeps 3 decimals', () => {
    expect(ratio(39.1, 42.8)).toBe(0.914);
  });
});

describe('interleave', () => {
  it('runs every contender once per round, rounds one after the other', () => {
    expect(interleave(['a', 'b', 'c'], 2)).toEqual([
      { round: 1, name: 'a' },
      { round: 1, name: 'b' },
      { round: 1, name: 'c' },
      { round: 2, name: 'a' },
      { round: 2, name: 'b' },
      { round: 2, name: 'c' },
    ]);
  });
});

describe('Samples', () => {
  it('collects runs per contender and gives each its spread and a log line', () => {
    const s = new Samples<'lifeboat' | 'raw'>();
    for (const [name, v] of [
      ['lifeboat', 3],
      ['raw', 2],
      ['lifeboat', 1],
      ['raw', 4],
      ['lifeboat', 2],
      ['raw', 3],
    ] as const)
      s.add(name, v);
    expect(s.of('lifeboat')).toEqual({ median: 2, min: 1, max: 3, runs: [3, 1, 2] });
    expect(s.ranges()).toEqual({ lifeboat: { min: 1, max: 3 }, raw: { min: 2, max: 4 } });
    expect(s.describe()[1]).toBe('raw: runs 2, 4, 3 s; median 3 s (min 2, max 4)');
  });
  it('throws for a contender that never ran', () => {
    expect(() => new Samples<'x'>().of('x')).toThrow('no run of x');
  });
});
