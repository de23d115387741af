/**
 * The charts page's series, from what the API answers: each VM's backup sizes over time (every
 * restore point of its images: a FULL or an increment, at its date) and each finished backup's
 * duration (an execution's startedAt to endedAt).
 */
import type { Execution, Image } from './api.ts';

/** A point of a series: a time and a value. */
export interface Datum {
  x: Date;
  y: number;
}

/** Backup size (bytes) over time, one series per VM id, each sorted by time. */
export function sizeSeries(images: readonly Image[]): Map<number, Datum[]> {
  const byVm = new Map<number, Datum[]>();
  for (const image of images) {
    const points =
      image.increments.length > 0
        ? image.increments.map((i) => ({ x: new Date(i.date), y: i.size }))
        : [{ x: new Date(image.createdAt), y: image.size }];
    byVm.set(image.vmId, [...(byVm.get(image.vmId) ?? []), ...points]);
  }
  for (const series of byVm.values()) series.sort((a, b) => a.x.getTime() - b.x.getTime());
  return byVm;
}

/** Each ended backup's duration in seconds, at its start, one series per VM id, sorted by time. */
export function durationSeries(executions: readonly Execution[]): Map<number, Datum[]> {
  const byVm = new Map<number, Datum[]>();
  for (const e of executions) {
    if (e.kind !== 'backup' || !e.startedAt || !e.endedAt || e.vmId === undefined) continue;
    const seconds = (Date.parse(e.endedAt) - Date.parse(e.startedAt)) / 1000;
    if (!Number.isFinite(seconds) || seconds < 0) continue;
    byVm.set(e.vmId, [...(byVm.get(e.vmId) ?? []), { x: new Date(e.startedAt), y: seconds }]);
  }
  for (const series of byVm.values()) series.sort((a, b) => a.x.getTime() - b.x.getTime());
  return byVm;
}
