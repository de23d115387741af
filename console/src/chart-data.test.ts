import { describe, expect, it } from 'vitest';
import type { CapacitySample, Execution, Image } from './api.ts';
import { capacitySeries, durationSeries, sizeSeries } from './chart-data.ts';

const image = (id: number, vmId: number, extra: Partial<Image>): Image =>
  ({ id, vmId, size: 10, createdAt: '2026-01-01T00:00:00Z', increments: [], ...extra }) as Image;

describe('chart series', () => {
  it('sizes: every restore point of a VM, in time order', () => {
    const series = sizeSeries([
      image(1, 7, {
        increments: [
          { id: 0, type: 'FULL', source: 'a', size: 100, date: '2026-01-02T00:00:00Z' },
          { id: 1, type: 'INCREMENT', source: 'b', size: 5, date: '2026-01-03T00:00:00Z' },
        ],
      }),
      image(2, 7, { size: 90, createdAt: '2026-01-01T00:00:00Z' }),
      image(3, 8, { size: 1 }),
    ]);
    expect(series.get(7)?.map((d) => d.y)).toEqual([90, 100, 5]);
    expect(series.get(8)?.map((d) => d.y)).toEqual([1]);
  });

  it('durations: ended backups only, in seconds', () => {
    const e = (id: string, extra: Partial<Execution>) =>
      ({ id, kind: 'backup', vmId: 7, state: 'SUCCEEDED', ...extra }) as Execution;
    const series = durationSeries([
      e('a', { startedAt: '2026-01-02T00:00:00Z', endedAt: '2026-01-02T00:01:30Z' }),
      e('b', { startedAt: '2026-01-01T00:00:00Z', endedAt: '2026-01-01T00:00:10Z' }),
      e('c', { startedAt: '2026-01-03T00:00:00Z' }),
      e('d', { kind: 'restore', startedAt: '2026-01-01T00:00:00Z', endedAt: '2026-01-01T00:00:10Z' }),
    ]);
    expect(series.get(7)?.map((d) => d.y)).toEqual([10, 90]);
  });

  it('capacity: used and free by time, an unknown figure left out (never 0), no series without a figure', () => {
    const sample = (at: string, extra: Partial<CapacitySample>): CapacitySample => ({
      datastoreId: 1,
      at,
      ...extra,
    });
    const series = capacitySeries([
      sample('2026-01-03T00:00:00Z', { usedBytes: 30, freeBytes: 70 }),
      sample('2026-01-01T00:00:00Z', { usedBytes: 10 }),
      sample('2026-01-02T00:00:00Z', { usedBytes: 20, freeBytes: 80 }),
    ]);
    expect(series.map((s) => [s.title, s.data.map((d) => d.y)])).toEqual([
      ['Used', [10, 20, 30]],
      ['Free', [80, 70]],
    ]);
    expect(capacitySeries([sample('2026-01-01T00:00:00Z', {})])).toEqual([]);
  });
});
