import { describe, expect, it } from 'vitest';
import { CONTENDERS, type Contender, summarize } from './full.ts';
import { Samples, type Spread } from './stats.ts';

/** Three interleaved rounds of every contender, as the benchmark records them. */
function rounds(runs: Record<Contender, [number, number, number]>): {
  runs: Record<Contender, Spread>;
  spread: Record<string, { min: number; max: number }>;
} {
  const samples = new Samples<Contender>();
  for (let r = 0; r < 3; r++) for (const c of CONTENDERS) samples.add(c, runs[c][r] as number);
  return {
    runs: Object.fromEntries(CONTENDERS.map((c) => [c, samples.of(c)])) as Record<Contender, Spread>,
    spread: samples.ranges(),
  };
}

describe('bench full summary', () => {
  const measured = rounds({
    // One noisy Lifeboat run (90 s) moves neither its median nor the ratios.
    lifeboat_restic: [66, 90, 64],
    raw_restic: [60, 61, 59],
    hand_restic: [64, 65, 63],
    lifeboat_rsync: [22.5, 22, 23],
    raw_rsync: [20, 21, 19],
    hand_rsync: [21, 22, 20],
    peer_full: [30, 31, 29],
  });
  const summary = summarize({ sizeMiB: 4096, ...measured, extraBytes: 12.25 * 2 ** 20 });
  // The verification after each Lifeboat backup, timed apart (the runs above end at the data stored).
  const verifies = new Samples<'restic' | 'rsync'>();
  for (const [restic, rsync] of [
    [9, 4],
    [12, 4.5],
    [10, 5],
  ] as const) {
    verifies.add('restic', restic);
    verifies.add('rsync', rsync);
  }
  const withVerify = summarize({
    sizeMiB: 4096,
    ...measured,
    extraBytes: 12.25 * 2 ** 20,
    verify: { restic: verifies.of('restic'), rsync: verifies.of('rsync') },
  });

  it('reports medians, the ratios being Lifeboat median over raw, hand and their medians', () => {
    expect(summary).toEqual({
      disk_gib: 4,
      lifeboat_restic_s: 66,
      raw_restic_s: 60,
      ratio_restic: 1.1,
      lifeboat_rsync_s: 22.5,
      raw_rsync_s: 20,
      ratio_rsync: 1.125,
      extra_disk_mib: 12.3,
      hand_s: 64,
      ratio_hand: 1.031,
      hand_rsync_s: 21,
      ratio_hand_rsync: 1.071,
      peer_full_s: 30,
      repeat: 3,
      spread_s: {
        lifeboat_restic: { min: 64, max: 90 },
        raw_restic: { min: 59, max: 61 },
        hand_restic: { min: 63, max: 65 },
        lifeboat_rsync: { min: 22, max: 23 },
        raw_rsync: { min: 19, max: 21 },
        hand_rsync: { min: 20, max: 22 },
        peer_full: { min: 29, max: 31 },
      },
    });
  });

  it('keeps the keys it had, in their order, and adds the new ones after them', () => {
    expect(Object.keys(summary)).toEqual([
      'disk_gib',
      'lifeboat_restic_s',
      'raw_restic_s',
      'ratio_restic',
      'lifeboat_rsync_s',
      'raw_rsync_s',
      'ratio_rsync',
      'extra_disk_mib',
      'hand_s',
      'ratio_hand',
      'hand_rsync_s',
      'ratio_hand_rsync',
      'peer_full_s',
      'repeat',
      'spread_s',
    ]);
    // The last stdout line is one JSON document.
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
    expect(Object.keys(withVerify)).toEqual([
      ...Object.keys(summary),
      'verify_restic_s',
      'verify_rsync_s',
      'verify_s',
      'verify_share',
    ]);
  });

  it('reports the verification apart: medians by driver, the larger, and its largest share of a backup', () => {
    expect(withVerify).toMatchObject({
      lifeboat_restic_s: 66,
      ratio_restic: 1.1,
      verify_restic_s: 10,
      verify_rsync_s: 4.5,
      verify_s: 10,
      // rsync's 4.5 of 22.5 s (0.2) is the larger share, restic's 10 of 66 s (0.152) the smaller.
      verify_share: 0.2,
    });
  });
});
