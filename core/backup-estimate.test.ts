import { describe, expect, it } from 'vitest';
import { estimateBackupBytes, toMiB } from './backup-estimate.ts';

const GiB = 1024 ** 3;

describe('estimateBackupBytes', () => {
  it('counts what a full backup reads: allocation when known, else the virtual size', () => {
    expect(estimateBackupBytes([{ size: 10 * GiB, allocated: 2 * GiB }, { size: GiB }], 'FULL')).toBe(
      3 * GiB,
    );
  });

  it('counts changed bytes for an increment when known, never more than a full', () => {
    const disks = [
      { size: 10 * GiB, allocated: 2 * GiB, dirty: 64 * 1024 ** 2 },
      { size: GiB, allocated: GiB, dirty: 5 * GiB },
    ];
    expect(estimateBackupBytes(disks, 'INCREMENT')).toBe(64 * 1024 ** 2 + GiB);
  });

  it('counts an increment with unknown changes as a full', () => {
    expect(estimateBackupBytes([{ size: 4 * GiB, allocated: GiB }], 'INCREMENT')).toBe(GiB);
  });

  it('is 0 for no disks, and rounds MiB up', () => {
    expect(estimateBackupBytes([], 'FULL')).toBe(0);
    expect(toMiB(1)).toBe(1);
    expect(toMiB(1024 ** 2)).toBe(1);
    expect(toMiB(1024 ** 2 + 1)).toBe(2);
  });
});
