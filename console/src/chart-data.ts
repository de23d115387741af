/**
 * The charts' series, from what the API answers: each VM's backup sizes over time (every
 * restore point of its images: a FULL or an increment, at its date), each finished backup's
 * duration (an execution's startedAt to endedAt), and a datastore's used and free space (its
 * capacity samples).
 */
import type { CapacitySample, Execution, Image } from './api.ts';

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

/**
 * A datastore's space over time: a "Used" (by backups) and a "Free" series from its capacity
 * samples, each with only the samples that measured it (unknown stays out, never 0), by time.
 */
export function capacitySeries(samples: readonly CapacitySample[]): { title: string; data: Datum[] }[] {
  const sorted = [...samples].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const of = (value: (s: CapacitySample) => number | undefined) =>
    sorted.flatMap((s) => {
      const y = value(s);
      return y === undefined ? [] : [{ x: new Date(s.at), y }];
    });
  return [
    { title: 'Used', data: of((s) => s.usedBytes) },
    { title: 'Free', data: of((s) => s.freeBytes) },
  ].filter((series) => series.data.length > 0);
}
