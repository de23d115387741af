import { describe, expect, it } from 'vitest';
import { flattenedImage, flattenPoints } from './flatten.ts';
import type { Image } from './model.ts';
import { flattenPlan } from './retention.ts';

const point = (id: number, extra: object = {}) => ({
  id,
  type: id === 0 ? ('FULL' as const) : ('INCREMENT' as const),
  ...(id === 0 ? {} : { parent: id - 1 }),
  source: `snap-${id}`,
  size: 10 + id,
  date: `2026-11-0${id + 1}T00:00:00Z`,
  checkpoint: `lifeboat-${id}`,
  ...extra,
});

const image: Image = {
  owner: 'admin',
  group: 'admin',
  permissions: 'um-------',
  id: 7,
  name: '3-1',
  type: 'BACKUP',
  datastoreId: 1,
  vmId: 3,
  state: 'LOCKED',
  mode: 'INCREMENT',
  source: 'snap-0',
  size: 46,
  disks: [{ id: 0, size: 10, virtualSize: 1000, format: 'raw', file: 'disk.0.raw' }],
  template: '<domain/>',
  increments: [point(0, { disks: [{ id: 0, file: 'disk.0.raw', size: 10 }] }), point(1), point(2), point(3)],
  createdAt: '2026-11-01T00:00:00Z',
} as Image;

describe('flatten', () => {
  const plan = flattenPlan(image.increments, 2);

  it('reads the FULL and the increments up to the new base', () => {
    expect(plan).toEqual({ newBase: 2, merge: [0, 1, 2], removed: [0, 1], keep: [2, 3] });
    expect(flattenPoints(image, plan as NonNullable<typeof plan>)).toEqual([
      { backupId: 'snap-0', disks: [{ id: 0, file: 'disk.0.raw' }] },
      { backupId: 'snap-1', disks: [{ id: 0, file: 'disk.0.inc1.qcow2' }] },
      { backupId: 'snap-2', disks: [{ id: 0, file: 'disk.0.inc2.qcow2' }] },
    ]);
  });

  it('makes the new base point 2 as a FULL keeping its checkpoint, and lists the merged backups', () => {
    const base = {
      backupId: 'flat-2',
      disks: [{ id: 0, file: 'disk.0.qcow2', size: 30, virtualSize: 1000 }],
    };
    const { image: after, unreferenced } = flattenedImage(image, plan as NonNullable<typeof plan>, base);
    expect(after.increments.map((i) => [i.id, i.type, i.source, i.checkpoint])).toEqual([
      [2, 'FULL', 'flat-2', 'lifeboat-2'],
      [3, 'INCREMENT', 'snap-3', 'lifeboat-3'],
    ]);
    expect(after.increments[0]?.parent).toBeUndefined();
    expect(after).toMatchObject({ source: 'flat-2', size: 30 + 13 });
    expect(after.disks).toEqual([
      { id: 0, size: 30, virtualSize: 1000, format: 'qcow2', file: 'disk.0.qcow2' },
    ]);
    expect(unreferenced).toEqual(['snap-0', 'snap-1', 'snap-2']);
    // A retried commit finds the new base already there.
    expect(flattenedImage(after, plan as NonNullable<typeof plan>, base)).toEqual({
      image: after,
      unreferenced: [],
    });
  });
});
