import { describe, expect, it } from 'vitest';
import { CEPH_CONTENDERS, summarizeCeph } from './ceph.ts';
import { Samples } from './stats.ts';

describe('bench ceph', () => {
  it('summarizes medians with the issue fields first: full over raw, increment over full, sent over changed', () => {
    const samples = new Samples<(typeof CEPH_CONTENDERS)[number]>();
    const runs = { lifeboat_full: [55, 52, 60], raw_full: [50, 51, 49], incremental: [2, 2.6, 1.9] };
    for (let r = 0; r < 3; r++) for (const c of CEPH_CONTENDERS) samples.add(c, runs[c][r] as number);
    const summary = summarizeCeph({
      sizeMiB: 4096,
      samples,
      changedBytes: 655 * 65536,
      sentBytes: [655 * 65536 + 1000, 655 * 65536, 2 * 655 * 65536],
    });
    expect(Object.keys(summary).slice(0, 9)).toEqual([
      'disk_gib',
      'lifeboat_full_s',
      'raw_full_s',
      'ratio_full',
      'incremental_s',
      'time_ratio',
      'changed_bytes',
      'sent_bytes',
      'bytes_ratio',
    ]);
    expect(summary).toEqual({
      disk_gib: 4,
      lifeboat_full_s: 55,
      raw_full_s: 50,
      ratio_full: 1.1,
      incremental_s: 2,
      time_ratio: 0.0364,
      changed_bytes: 42926080,
      sent_bytes: 42927080,
      bytes_ratio: 1,
      repeat: 3,
      spread_s: {
        lifeboat_full: { min: 52, max: 60 },
        raw_full: { min: 49, max: 51 },
        incremental: { min: 1.9, max: 2.6 },
      },
    });
  });
});
