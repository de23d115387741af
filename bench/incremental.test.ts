import { describe, expect, it } from 'vitest';
import { INC_CONTENDERS, type IncContender, randomBlocks, summarizeIncremental } from './incremental.ts';
import { Samples } from './stats.ts';

describe('bench incremental', () => {
  it('summarizes medians with the issue fields first, ratios increment over full, sent over changed, Lifeboat over the peer', () => {
    const samples = new Samples<IncContender>();
    const runs: Record<IncContender, number[]> = {
      full: [50, 52, 49],
      peer_full: [45, 46, 47],
      incremental: [2, 9, 1.9],
      peer_inc: [2.5, 2.4, 2.6],
    };
    for (let r = 0; r < 3; r++) for (const c of INC_CONTENDERS) samples.add(c, runs[c][r] as number);
    const summary = summarizeIncremental({
      sizeMiB: 4096,
      samples,
      changedBytes: 655 * 65536,
      sentBytes: [2 * 655 * 65536, 3 * 655 * 65536, 655 * 65536],
    });
    expect(summary).toEqual({
      disk_gib: 4,
      full_s: 50,
      incremental_s: 2,
      time_ratio: 0.04,
      changed_bytes: 42926080,
      sent_bytes: 85852160,
      bytes_ratio: 2,
      peer_full_s: 46,
      peer_inc_s: 2.5,
      ratio_peer_full: 1.087,
      ratio_peer_inc: 0.8,
      repeat: 3,
      spread_s: {
        full: { min: 49, max: 52 },
        incremental: { min: 1.9, max: 9 },
        peer_full: { min: 45, max: 47 },
        peer_inc: { min: 2.4, max: 2.6 },
      },
    });
    expect(Object.keys(summary).slice(0, 7)).toEqual([
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
