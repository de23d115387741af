import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CoalescedReports } from './coalesced-reports.ts';

/** A report that takes `ms` and records when it started and ended. */
function slowReport(ms: number) {
  const runs: { start: number; end?: number }[] = [];
  const report = async () => {
    const run: { start: number; end?: number } = { start: Date.now() };
    runs.push(run);
    await new Promise((resolve) => setTimeout(resolve, ms));
    run.end = Date.now();
  };
  return { runs, report };
}

describe('CoalescedReports', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('turns a burst of events into one report once the burst is quiet', async () => {
    const { runs, report } = slowReport(50);
    const reports = new CoalescedReports(report, { quietMs: 300, maxDelayMs: 2000 });
    for (let i = 0; i < 5; i++) {
      reports.request();
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(runs).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(runs.map((r) => r.start)).toEqual([700]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toHaveLength(1);
  });

  it('reports within maxDelay even while events keep coming', async () => {
    const { runs, report } = slowReport(10);
    const reports = new CoalescedReports(report, { quietMs: 300, maxDelayMs: 1000 });
    for (let i = 0; i < 30; i++) {
      reports.request();
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(runs.map((r) => r.start)).toEqual([1000, 2000, 3000]);
  });

  it('never overlaps reports: a change during one is reported once right after it', async () => {
    const { runs, report } = slowReport(500);
    const reports = new CoalescedReports(report, { quietMs: 300, maxDelayMs: 2000 });
    const first = reports.now();
    await vi.advanceTimersByTimeAsync(100);
    const a = reports.now();
    const b = reports.now();
    expect(a).toBe(b);
    reports.request();
    await vi.advanceTimersByTimeAsync(2000);
    await Promise.all([first, a, b]);
    // The event's report joins the one queued behind the first: it starts after the event.
    expect(runs.map((r) => [r.start, r.end])).toEqual([
      [0, 500],
      [500, 1000],
    ]);
  });

  it('stop waits for the report in flight and ends the queue', async () => {
    const { runs, report } = slowReport(500);
    const reports = new CoalescedReports(report, { quietMs: 300, maxDelayMs: 2000 });
    void reports.now();
    void reports.now();
    reports.request();
    let stopped = false;
    void reports.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(499);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(stopped).toBe(true);
    expect(runs).toHaveLength(1);
    await reports.now();
    reports.request();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(1);
  });
});
