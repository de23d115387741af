import { describe, expect, it } from 'vitest';
import { type CatalogBackup, planImport, templateUuid } from './catalog.ts';

const SUM = 'a'.repeat(64);
let clock = 0;
function backup(vmId: number, imageId: number | null, backupId: string, names: string[]): CatalogBackup {
  clock += 60_000;
  return {
    vmId,
    backupId,
    imageId,
    jobId: null,
    time: new Date(Date.UTC(2026, 11, 1) + clock).toISOString(),
    files: names.map((name, i) => ({ name, size: 1000 + i, sha256: i === 0 ? SUM : null })),
    template: `<domain><name>vm-${vmId}</name></domain>`,
  };
}

describe('planImport', () => {
  it('makes a FULL image of a lone backup, with its disks, sizes, sha256 and template', () => {
    const plan = planImport([backup(7, 70, 'b1', ['disk.1.raw', 'disk.0.qcow2'])], new Set());
    expect(plan.known).toBe(0);
    expect(plan.skipped).toEqual([]);
    expect(plan.images).toEqual([
      expect.objectContaining({
        vmId: 7,
        preferredId: 70,
        mode: 'FULL',
        source: 'b1',
        size: 2001,
        template: '<domain><name>vm-7</name></domain>',
        increments: [],
        backupIds: ['b1'],
        disks: [
          { id: 0, size: 1001, virtualSize: 1001, format: 'qcow2', file: 'disk.0.qcow2' },
          { id: 1, size: 1000, virtualSize: 1000, format: 'raw', file: 'disk.1.raw', sha256: SUM },
        ],
      }),
    ]);
  });

  it('rebuilds an increment chain from the points its file names carry, in order', () => {
    const full = backup(8, 80, 'f', ['disk.0.raw']);
    const inc1 = backup(8, 80, 'i1', ['disk.0.inc1.qcow2']);
    const inc2 = backup(8, 80, 'i2', ['disk.0.inc2.qcow2']);
    const [image] = planImport([inc2, full, inc1], new Set()).images;
    expect(image?.mode).toBe('INCREMENT');
    expect(image?.source).toBe('f');
    expect(image?.size).toBe(3000);
    expect(image?.increments.map((i) => [i.id, i.parent, i.type, i.source])).toEqual([
      [0, undefined, 'FULL', 'f'],
      [1, 0, 'INCREMENT', 'i1'],
      [2, 1, 'INCREMENT', 'i2'],
    ]);
    expect(image?.backupIds).toEqual(['f', 'i1', 'i2']);
  });

  it('after a flatten: the newest FULL is the base at point (lowest N) - 1; the older FULL its own image', () => {
    const old = backup(9, 90, 'old', ['disk.0.raw']);
    const inc4 = backup(9, 90, 'i4', ['disk.0.inc4.qcow2']);
    const base = backup(9, 90, 'flat', ['disk.0.qcow2']);
    const plan = planImport([old, inc4, base], new Set());
    expect(plan.images.map((i) => [i.source, i.preferredId, i.mode])).toEqual([
      ['flat', 90, 'INCREMENT'],
      ['old', null, 'FULL'],
    ]);
    expect(plan.images[0]?.increments.map((i) => [i.id, i.parent])).toEqual([
      [3, undefined],
      [4, 3],
    ]);
  });

  it('skips what cannot be restored: a point past a gap, increments without their FULL, nameless disks', () => {
    const plan = planImport(
      [
        backup(10, 100, 'f', ['disk.0.raw']),
        backup(10, 100, 'i1', ['disk.0.inc1.qcow2']),
        backup(10, 100, 'i3', ['disk.0.inc3.qcow2']),
        backup(11, 110, 'orphan', ['disk.0.inc2.qcow2']),
        backup(12, null, 'odd', ['data.bin']),
      ],
      new Set(),
    );
    expect(plan.images.map((i) => i.backupIds)).toEqual([['f', 'i1']]);
    expect(plan.skipped.map((s) => s.backupId).sort()).toEqual(['i3', 'odd', 'orphan']);
  });

  it('skips a backup, or the rest of a chain, whose sizes add past an exact byte count', () => {
    const huge = (b: CatalogBackup): CatalogBackup => ({
      ...b,
      files: b.files.map((f) => ({ ...f, size: Number.MAX_SAFE_INTEGER - 10 })),
    });
    const plan = planImport(
      [
        huge(backup(14, 140, 'two-huge-disks', ['disk.0.raw', 'disk.1.raw'])),
        huge(backup(15, 150, 'f', ['disk.0.raw'])),
        backup(15, 150, 'i1', ['disk.0.inc1.qcow2']),
        backup(15, 150, 'i2', ['disk.0.inc2.qcow2']),
      ],
      new Set(),
    );
    expect(plan.images.map((i) => [i.backupIds, i.size])).toEqual([[['f'], Number.MAX_SAFE_INTEGER - 10]]);
    expect(plan.images[0]?.increments.map((i) => i.id)).toEqual([0]);
    expect(plan.skipped.map((s) => s.backupId).sort()).toEqual(['i1', 'i2', 'two-huge-disks']);
    expect(plan.skipped.find((s) => s.backupId === 'two-huge-disks')?.reason).toMatch(/exact byte count/);
  });

  it('leaves a group alone, whole, when the control plane knows any of its backups', () => {
    const catalog = [
      backup(13, 130, 'f', ['disk.0.raw']),
      backup(13, 130, 'i1', ['disk.0.inc1.qcow2']),
      backup(13, 131, 'g', ['disk.0.raw']),
    ];
    const plan = planImport(catalog, new Set(['i1']));
    expect(plan.known).toBe(1);
    expect(plan.images.map((i) => i.source)).toEqual(['g']);
    expect(planImport(catalog, new Set(['f', 'g'])).images).toEqual([]);
  });

  it('keeps the backups of different VMs and of untagged backups apart', () => {
    const plan = planImport(
      [
        backup(14, 5, 'a', ['disk.0.raw']),
        backup(15, 5, 'b', ['disk.0.raw']),
        backup(16, null, 'c', ['disk.0.raw']),
        backup(16, null, 'd', ['disk.0.raw']),
      ],
      new Set(),
    );
    expect(plan.images.map((i) => i.source)).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('templateUuid', () => {
  it("reads a template's domain UUID in canonical form, or null", () => {
    expect(templateUuid('<domain><uuid> 1C4E000000004000800000000000140A </uuid></domain>')).toBe(
      '1c4e0000-0000-4000-8000-00000000140a',
    );
    expect(templateUuid('<domain><uuid>1c4e0000-0000-4000-8000-00000000140a</uuid></domain>')).toBe(
      '1c4e0000-0000-4000-8000-00000000140a',
    );
    expect(templateUuid('<domain><name>x</name></domain>')).toBeNull();
    expect(templateUuid('<domain><uuid>not-a-uuid</uuid></domain>')).toBeNull();
  });
});
