import { describe, expect, it } from 'vitest';
import { computeStats, median } from './stats.ts';

const now = new Date('2026-12-06T12:00:00.000Z');
const ago = (hours: number) => new Date(now.getTime() - hours * 3_600_000).toISOString();

function backup(state: string, endedHoursAgo: number, seconds: number, bytes = 0) {
  const ended = Date.parse(ago(endedHoursAgo));
  return {
    kind: 'backup' as const,
    state: state as 'SUCCEEDED',
    startedAt: new Date(ended - seconds * 1000).toISOString(),
    endedAt: new Date(ended).toISOString(),
    bytesDone: bytes,
  };
}

describe('median', () => {
  it('is the middle value, or the mean of the two middle ones', () => {
    expect(median([])).toBeNull();
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

describe('computeStats', () => {
  it('counts backups per window, their bytes and median seconds, datastores, missed and verify failures', () => {
    const stats = computeStats({
      now,
      executions: [
        backup('SUCCEEDED', 1, 10, 100),
        backup('SUCCEEDED', 2, 30, 200),
        backup('FAILED', 3, 5),
        backup('TIMED_OUT', 30, 5),
        backup('SUCCEEDED', 48, 60, 1000),
        backup('ABORTED', 100, 1),
        // Older than 7 days, still running, and not a backup: not counted.
        backup('SUCCEEDED', 24 * 8, 10, 5000),
        { kind: 'backup', state: 'RUNNING', startedAt: ago(1), bytesDone: 0 },
        { ...backup('SUCCEEDED', 1, 10, 7), kind: 'restore' },
      ],
      images: [
        { id: 1, verifyState: 'OK' },
        { id: 2, verifyState: 'FAILED' },
        { id: 3 },
        { id: 4, verifyState: 'FAILED' },
      ],
      datastores: [
        { id: 101, name: 'b', freeBytes: 5, totalBytes: 10, usedBytes: 5, monitoredAt: ago(0) },
        { id: 100, name: 'a' },
      ],
      missed: [{ vmId: 3, scheduleId: 1, periodSeconds: 86_400, missedSince: ago(1) }],
    });
    expect(stats).toEqual({
      at: now.toISOString(),
      backups: {
        '24h': { succeeded: 2, failed: 1, bytes: 300, medianSeconds: 20 },
        '7d': { succeeded: 3, failed: 3, bytes: 1300, medianSeconds: 30 },
      },
      datastores: [
        { id: 100, name: 'a' },
        { id: 101, name: 'b', freeBytes: 5, totalBytes: 10, usedBytes: 5, monitoredAt: ago(0) },
      ],
      missedBackups: [{ vmId: 3, scheduleId: 1, periodSeconds: 86_400, missedSince: ago(1) }],
      verifyFailures: 2,
    });
  });

  it('with nothing, zeros and no median', () => {
    const stats = computeStats({ now, executions: [], images: [], datastores: [], missed: [] });
    expect(stats.backups['24h']).toEqual({ succeeded: 0, failed: 0, bytes: 0, medianSeconds: null });
    expect(stats.verifyFailures).toBe(0);
  });
});
