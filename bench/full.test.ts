import { describe, expect, it } from 'vitest';
import { summarize } from './full.ts';

describe('bench full summary', () => {
  it('carries exactly the fields of the issue, ratios being Lifeboat over raw', () => {
    const summary = summarize({
      sizeMiB: 4096,
      lifeboatRestic: 66,
      rawRestic: 60,
      lifeboatRsync: 22.5,
      rawRsync: 20,
      extraBytes: 12.25 * 2 ** 20,
    });
    expect(summary).toEqual({
      disk_gib: 4,
      lifeboat_restic_s: 66,
      raw_restic_s: 60,
      ratio_restic: 1.1,
      lifeboat_rsync_s: 22.5,
      raw_rsync_s: 20,
      ratio_rsync: 1.125,
      extra_disk_mib: 12.3,
    });
    expect(Object.keys(summary)).toEqual([
      'disk_gib',
      'lifeboat_restic_s',
      'raw_restic_s',
      'ratio_restic',
      'lifeboat_rsync_s',
      'raw_rsync_s',
      'ratio_rsync',
      'extra_disk_mib',
    ]);
  });
});
