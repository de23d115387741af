/**
 * Measuring helpers of the benchmarks: wall-clock timing, medians, the host's load, and the
 * peak extra disk use of a filesystem sampled while something runs. No Lifeboat code here.
 */
import { readFile, stat, statfs } from 'node:fs/promises';
import { loadavg } from 'node:os';

/** Seconds since `startMs` (a `performance.now()` value), to the millisecond. */
export function secondsSince(startMs: number): number {
  return Math.round(performance.now() - startMs) / 1000;
}

/** Runs `fn` and answers its result with the seconds it took. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { seconds: secondsSince(start), value };
}

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** `value` rounded to `digits` decimals (for the JSON summary). */
export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
export function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** Bytes in use on the filesystem holding `path` (what `df` calls Used). */
export async function usedBytes(path: string): Promise<number> {
  const fs = await statfs(path);
  return (fs.blocks - fs.bfree) * fs.bsize;
}

/** What a {@link DiskSampler} saw. */
export interface DiskPeak {
  /** Used bytes before the measured work started (median of the warm-up samples). */
  baselineBytes: number;
  /** Highest used bytes seen, minus the baseline (never below 0). */
  peakExtraBytes: number;
  samples: number;
}

/**
 * Samples the used bytes of one or more filesystems every `intervalMs` (summed, each
 * filesystem once) until stopped. `read` is injectable so the arithmetic can be tested.
 */
export class DiskSampler {
  private readonly values: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<void> = Promise.resolve();
  private baseline = 0;

  constructor(
    private readonly read: () => Promise<number>,
    private readonly intervalMs = 100,
  ) {}

  /** Takes `warmup` samples `intervalMs` apart as the baseline, then samples until {@link stop}. */
  async start(warmup = 5): Promise<void> {
    const first: number[] = [];
    for (let i = 0; i < warmup; i++) {
      first.push(await this.read());
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
    this.baseline = median(first);
    this.timer = setInterval(() => {
      // One read at a time: a slow statfs must not pile up.
      this.pending = this.pending.then(async () => {
        // A folder vanishing mid-walk is not worth a crash: that sample is skipped.
        const value = await this.read().catch(() => undefined);
        if (value !== undefined) this.values.push(value);
      });
    }, this.intervalMs);
  }

  /** Stops sampling (after one last sample) and answers the peak over the baseline. */
  async stop(): Promise<DiskPeak> {
    clearInterval(this.timer);
    await this.pending;
    this.values.push(await this.read());
    const peak = Math.max(...this.values);
    return {
      baselineBytes: this.baseline,
      peakExtraBytes: Math.max(0, peak - this.baseline),
      samples: this.values.length,
    };
  }
}

/** A reader of {@link DiskSampler}: the used bytes of each distinct filesystem of `paths`, summed. */
export async function filesystemsReader(paths: readonly string[]): Promise<() => Promise<number>> {
  const byDevice = new Map<number, string>();
  for (const path of paths) {
    const { dev } = await stat(path);
    if (!byDevice.has(dev)) byDevice.set(dev, path);
  }
  const distinct = [...byDevice.values()];
  return async () => (await Promise.all(distinct.map(usedBytes))).reduce((a, b) => a + b, 0);
}

/** CPU seconds of a process: its own, and that of its waited-for children (restic, ssh, ...). */
export interface CpuSeconds {
  self: number;
  children: number;
}

/** Reads `/proc/<pid>/stat` (utime+stime, cutime+cstime); zeros when the process is gone. */
export async function cpuSeconds(pid: number): Promise<CpuSeconds> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name, which may hold spaces: state is field 3, utime field 14.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const tick = (i: number) => Number(fields[i - 3] ?? 0) / 100;
  return { self: tick(14) + tick(15), children: tick(16) + tick(17) };
}
