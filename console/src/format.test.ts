/** The console's display helpers. */
import { describe, expect, it } from 'vitest';
import { configSummary, formatBytes, formatDuration, rateAndEta } from './format.ts';

describe('console formatting', () => {
  it('shows bytes in binary units and BACKUP_CONFIG with sorted keys', () => {
    expect(formatBytes(undefined)).toBe('-');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.5 GiB');
    expect(configSummary({ MODE: 'INCREMENT', KEEP_LAST: '3' })).toBe('KEEP_LAST=3, MODE=INCREMENT');
    expect(configSummary({})).toBe('-');
  });

  it('derives rate and ETA from two progress readings', () => {
    const MiB = 1024 * 1024;
    expect(rateAndEta({ bytes: 0, at: 0 }, { bytes: 10 * MiB, at: 2000 }, 100 * MiB)).toEqual({
      rate: 5 * MiB,
      etaSeconds: 18,
    });
    // Nothing moved, or no time passed: no rate to show.
    expect(rateAndEta({ bytes: MiB, at: 0 }, { bytes: MiB, at: 3000 }, 10 * MiB)).toBeUndefined();
    expect(rateAndEta({ bytes: 0, at: 5 }, { bytes: MiB, at: 5 }, 10 * MiB)).toBeUndefined();
    // Total unknown or reached: a rate, no ETA.
    expect(rateAndEta({ bytes: 0, at: 0 }, { bytes: MiB, at: 1000 }, 0)?.etaSeconds).toBeUndefined();
    expect(formatDuration(18)).toBe('18 s');
    expect(formatDuration(125)).toBe('2 min 5 s');
    expect(formatDuration(3720)).toBe('1 h 2 min');
  });
});
