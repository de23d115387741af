import { describe, expect, it } from 'vitest';
import { type RestoreContender, rawRestoreCommands, restoreRequest, summarizeRestore } from './restore.ts';
import { Samples } from './stats.ts';

describe('bench restore', () => {
  it('summarizes medians and their spread, ratio_restore being Lifeboat over raw', () => {
    const samples = new Samples<RestoreContender>();
    for (const [l, r] of [
      [40, 37],
      [70, 36],
      [39, 38],
    ] as const) {
      samples.add('lifeboat_restore', l);
      samples.add('raw_restore', r);
    }
    const summary = summarizeRestore({ sizeMiB: 4096, backupS: 41.234, samples });
    expect(summary).toEqual({
      disk_gib: 4,
      backup_s: 41.23,
      lifeboat_restore_s: 40,
      raw_restore_s: 37,
      ratio_restore: 1.081,
      repeat: 3,
      spread_s: { lifeboat_restore: { min: 39, max: 70 }, raw_restore: { min: 36, max: 38 } },
    });
  });

  it('asks Lifeboat for the disk in a folder of its own, no VM defined', () => {
    expect(restoreRequest(2, '/tmp/r/lifeboat_restore-2')).toEqual({
      name: 'bench-restore-2',
      targetDir: '/tmp/r/lifeboat_restore-2',
      define: false,
    });
  });

  it('restores by hand with restic dump of the stored file, then the qcow2 conversion Lifeboat does', () => {
    const cmd = rawRestoreCommands(
      ['-r', 'sftp:h:/b/1'],
      'abc123',
      'disk.0.raw',
      '/s/disk.0.raw',
      '/o/disk-0.qcow2',
    );
    expect(cmd.dump).toEqual(['-r', 'sftp:h:/b/1', 'dump', 'abc123', '/disk.0.raw']);
    expect(cmd.convert).toEqual(['convert', '-f', 'raw', '-O', 'qcow2', '/s/disk.0.raw', '/o/disk-0.qcow2']);
  });
});
