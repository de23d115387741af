import { describe, expect, it } from 'vitest';
import { BackupResult } from './tasks.ts';

const result = {
  backupId: 'b1b2c3d4e5f60718',
  disks: [{ id: 0, size: 512, virtualSize: 1024, format: 'raw', file: 'disk.0.raw' }],
  increment: null,
  template: '<domain/>',
  durationMs: 5,
};

describe('BackupResult: what the runner verified', () => {
  it("carries each disk's sha256 and verifiedAt", () => {
    const sha256 = 'ab'.repeat(32);
    const parsed = BackupResult.parse({
      ...result,
      disks: [{ ...result.disks[0], sha256 }],
      verifiedAt: '2026-12-06T16:00:00.000Z',
    });
    expect(parsed.disks[0]?.sha256).toBe(sha256);
    expect(parsed.verifiedAt).toBe('2026-12-06T16:00:00.000Z');
  });

  it('still takes the answer of a runner that does not verify (no sha256, no verifiedAt)', () => {
    const parsed = BackupResult.parse(result);
    expect(parsed.disks[0]).not.toHaveProperty('sha256');
    expect(parsed).not.toHaveProperty('verifiedAt');
  });

  it('refuses a sha256 that is not 64 lower-case hex digits, and a verifiedAt that is no instant', () => {
    for (const sha256 of ['AB'.repeat(32), 'ab'.repeat(31), `${'ab'.repeat(31)}zz`]) {
      expect(BackupResult.safeParse({ ...result, disks: [{ ...result.disks[0], sha256 }] }).success).toBe(
        false,
      );
    }
    expect(BackupResult.safeParse({ ...result, verifiedAt: 'yesterday' }).success).toBe(false);
  });
});
