import { describe, expect, it } from 'vitest';
import { Image } from './model.ts';
import { recordedSums } from './recorded-sums.ts';

const sha = (c: string) => c.repeat(64);
const base = {
  id: 40,
  name: '7-backup',
  type: 'BACKUP',
  datastoreId: 100,
  vmId: 7,
  state: 'READY',
  owner: 'alice',
  group: 'users',
  permissions: 'um-------',
  createdAt: '2026-12-06T15:59:00.000Z',
};

describe('recordedSums: what a verify task checks a stored backup against', () => {
  it("a FULL image: its disks' sha256 by file", () => {
    const image = Image.parse({
      ...base,
      mode: 'FULL',
      source: 'full-1',
      disks: [
        { id: 0, size: 1, virtualSize: 1, format: 'raw', file: 'disk.0.raw', sha256: sha('a') },
        { id: 1, size: 1, virtualSize: 1, format: 'raw', file: 'disk.1.raw', sha256: sha('b') },
      ],
    });
    expect(recordedSums(image, 'full-1')).toEqual({ 'disk.0.raw': sha('a'), 'disk.1.raw': sha('b') });
  });

  it("a chain: the point's own files, FULL or increment", () => {
    const point = (id: number, source: string, file: string, c: string) => ({
      id,
      ...(id > 0 && { parent: id - 1 }),
      type: id === 0 ? 'FULL' : 'INCREMENT',
      source,
      size: 1,
      date: '2026-12-06T16:00:00.000Z',
      disks: [{ id: 0, file, size: 1, sha256: sha(c) }],
    });
    const image = Image.parse({
      ...base,
      mode: 'INCREMENT',
      source: 'p0',
      disks: [{ id: 0, size: 1, virtualSize: 1, format: 'raw', file: 'disk.0.raw', sha256: sha('c') }],
      increments: [point(0, 'p0', 'disk.0.raw', 'c'), point(1, 'p1', 'disk.0.inc1.qcow2', 'd')],
    });
    expect(recordedSums(image, 'p0')).toEqual({ 'disk.0.raw': sha('c') });
    expect(recordedSums(image, 'p1')).toEqual({ 'disk.0.inc1.qcow2': sha('d') });
  });

  it('an image from before verification, or an unknown backup: null (the data is read back only)', () => {
    const image = Image.parse({
      ...base,
      mode: 'FULL',
      source: 'old',
      disks: [{ id: 0, size: 1, virtualSize: 1, format: 'raw', file: 'disk.0.raw' }],
    });
    expect(recordedSums(image, 'old')).toBeNull();
    expect(recordedSums(image, 'other')).toBeNull();
  });
});
