import { describe, expect, it } from 'vitest';
import { randomBlocks, summarizeIncremental } from './incremental.ts';

describe('bench incremental', () => {
  it('summarizes with exactly the fields of the issue, ratios being increment over full and sent over changed', () => {
    const summary = summarizeIncremental({
      sizeMiB: 4096,
      fullS: 50,
      incrementalS: 2,
      changedBytes: 655 * 65536,
      sentBytes: 2 * 655 * 65536,
    });
    expect(summary).toEqual({
      disk_gib: 4,
      full_s: 50,
      incremental_s: 2,
      time_ratio: 0.04,
      changed_bytes: 42926080,
      sent_bytes: 85852160,
      bytes_ratio: 2,
    });
    expect(Object.keys(summary)).toEqual([
      'disk_gib',
      'full_s',
      'incremental_s',
      'time_ratio',
      'changed_bytes',
      'sent_bytes',
      'bytes_ratio',
    ]);
  });

  it('picks distinct blocks inside the disk, sorted', () => {
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const blocks = randomBlocks(65536, 655, random);
    expect(blocks).toHaveLength(655);
    expect(new Set(blocks).size).toBe(655);
    expect(blocks.every((b) => b >= 0 && b < 65536)).toBe(true);
    expect([...blocks].sort((a, b) => a - b)).toEqual(blocks);
  });
});
