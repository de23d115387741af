import { describe, expect, it } from 'vitest';
import {
  type BackupEstimate,
  estimateBackup,
  estimateBackupBytes,
  roomProblem,
  toMiB,
} from './backup-estimate.ts';
import type { Disk } from './model.ts';

const MiB = 1024 ** 2;
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

describe('estimateBackup', () => {
  const disk = (id: number, over: Partial<Disk> = {}): Disk => ({
    id,
    target: `vd${id}`,
    source: `/d${id}`,
    format: 'qcow2',
    size: 64 * MiB,
    volatile: false,
    canIncrement: true,
    ...over,
  });
  const vm = (config: Record<string, string>, disks = [disk(0, { allocated: 3 * MiB + 1, dirty: MiB })]) => ({
    disks,
    backups: { BACKUP_CONFIG: config, BACKUP_IDS: [] },
  });
  const chained = { MODE: 'INCREMENT', INCREMENTAL_BACKUP_ID: '9' };

  it('estimates a full backup at its disks allocation', () => {
    expect(estimateBackup(vm({}), { reset: false })).toEqual({
      kind: 'FULL',
      diskIds: [0],
      bytes: 3 * MiB + 1,
    });
  });

  it('estimates an increment on a recorded chain at its dirty bytes', () => {
    expect(estimateBackup(vm(chained), { reset: false })).toEqual({
      kind: 'INCREMENT',
      diskIds: [0],
      bytes: MiB,
    });
  });

  it('takes a full when the chain is reset, missing (or empty, as Admit reads it), or a disk cannot increment', () => {
    expect(estimateBackup(vm(chained), { reset: true })?.kind).toBe('FULL');
    expect(estimateBackup(vm(chained), { reset: false, jobConfig: { RESET: 'YES' } })?.kind).toBe('FULL');
    expect(estimateBackup(vm({ MODE: 'INCREMENT' }), { reset: false })?.kind).toBe('FULL');
    expect(estimateBackup(vm({ MODE: 'INCREMENT', INCREMENTAL_BACKUP_ID: '' }), { reset: false })?.kind).toBe(
      'FULL',
    );
    const raw = vm(chained, [disk(0, { canIncrement: false })]);
    expect(estimateBackup(raw, { reset: false })).toEqual({ kind: 'FULL', diskIds: [0], bytes: 64 * MiB });
  });

  it('counts only the selected disks (DISK_IDS, volatile), a job config under the VM own', () => {
    const disks = [
      disk(0, { allocated: 2 * MiB }),
      disk(1, { allocated: 8 * MiB }),
      disk(2, { volatile: true }),
    ];
    expect(estimateBackup(vm({ DISK_IDS: '1' }, disks), { reset: false })).toMatchObject({
      diskIds: [1],
      bytes: 8 * MiB,
    });
    expect(estimateBackup(vm({}, disks), { reset: false })?.bytes).toBe(10 * MiB);
    expect(
      estimateBackup(vm({}, disks), { reset: false, jobConfig: { BACKUP_VOLATILE: 'YES' } })?.bytes,
    ).toBe(74 * MiB);
    expect(
      estimateBackup(vm({ DISK_IDS: '0' }, disks), { reset: false, jobConfig: { DISK_IDS: '1' } })?.bytes,
    ).toBe(2 * MiB);
  });

  it('has none for a config Admit refuses: no disk selected, a corrupt value', () => {
    expect(estimateBackup(vm({ DISK_IDS: '7' }), { reset: false })).toBeNull();
    expect(estimateBackup(vm({ MODE: 'SOMETIMES' }), { reset: false })).toBeNull();
  });
});

describe('roomProblem', () => {
  const estimate: BackupEstimate = { kind: 'FULL', diskIds: [0, 2], bytes: 200 * MiB };
  const ds = { id: 1, freeBytes: 100 * MiB, monitoredAt: '2026-12-06T10:00:00.000Z' };

  it('refuses a backup larger than FREE, with the numbers', () => {
    expect(roomProblem(ds, 7, estimate)).toBe(
      'datastore 1 has 100 MiB free (measured 2026-12-06T10:00:00.000Z); the FULL backup of VM 7 ' +
        `(disks 0, 2) needs about 200 MiB (${200 * MiB} bytes, ${100 * MiB} free)`,
    );
  });

  it('admits what fits, and anything while FREE is unknown', () => {
    expect(roomProblem({ ...ds, freeBytes: 200 * MiB }, 7, estimate)).toBeUndefined();
    expect(roomProblem({ id: 1 }, 7, estimate)).toBeUndefined();
  });
});
