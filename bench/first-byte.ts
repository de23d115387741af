/**
 * When the first bytes of a backup reach the datastore's tool: a watcher of /proc that notes
 * the first instant a `restic` or `rsync` process under the runner has read `thresholdBytes`
 * (rchar of /proc/<pid>/io: restic's stdin pipe from nbdcopy, rsync's reads of the disk file).
 * A small threshold (64 KiB) is past what the tools read of their own configuration and keys
 * and well inside the first block of data, so the instant is the first byte's give or take a
 * millisecond. Also the CPU of the stack during the same run (bench/control-cpu.ts), and its
 * DynamoDB requests, the benchmark's own polls of the run included: they follow it as
 * `lifeboat backup --wait` does (bench/lifeboat.ts), so what they cost is what an operator's
 * wait costs.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPids } from '#local/pids.ts';
import { countsBetween, type RequestCounts } from '#local/request-counts.ts';
import { type CpuUse, cpuBetween, stackProcesses } from './control-cpu.ts';
import { median, round } from './measure.ts';

/** Bytes in `/proc/<pid>/io` text's rchar line (0 when absent). */
export function rcharOf(ioText: string): number {
  return Number(/^rchar:\s*(\d+)/m.exec(ioText)?.[1] ?? 0);
}

interface Seen {
  ppid: number;
  comm: string;
}

/** Watches for the first byte; {@link stop} answers the seconds from start to it. */
export class FirstByteWatcher {
  private readonly seen = new Map<number, Seen>();
  private readonly candidates = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private firstAt: number | undefined;
  private readonly start = performance.now();

  constructor(
    private readonly runnerPid: number,
    private readonly tools: readonly string[] = ['restic', 'rsync'],
    private readonly thresholdBytes = 64 * 1024,
    intervalMs = 20,
  ) {
    this.timer = setInterval(() => void this.tick(), intervalMs);
  }

  private underRunner(pid: number): boolean {
    for (let p = pid, hops = 0; p > 1 && hops < 32; hops++) {
      if (p === this.runnerPid) return true;
      const s = this.seen.get(p);
      if (!s) return false;
      p = s.ppid;
    }
    return false;
  }

  private async tick(): Promise<void> {
    if (this.busy || this.firstAt !== undefined) return;
    this.busy = true;
    try {
      // Only processes not seen before are read: a tick costs one readdir of /proc.
      const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number);
      for (const pid of pids) {
        // A process under the runner is read again until it is a tool: a fork caught before
        // its exec still bears the runner's name.
        if (this.seen.has(pid) && (this.candidates.has(pid) || !this.underRunner(pid))) continue;
        const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
        const close = text.lastIndexOf(')');
        if (close < 0) continue;
        const comm = text.slice(text.indexOf('(') + 1, close);
        const ppid = Number(text.slice(close + 2).split(' ')[1]);
        this.seen.set(pid, { ppid, comm });
      }
      for (const [pid, s] of this.seen) {
        if (this.tools.includes(s.comm) && !this.candidates.has(pid) && this.underRunner(pid))
          this.candidates.add(pid);
      }
      for (const pid of this.candidates) {
        const io = await readFile(join('/proc', String(pid), 'io'), 'utf8').catch(() => '');
        if (rcharOf(io) >= this.thresholdBytes) {
          this.firstAt = performance.now();
          break;
        }
      }
    } finally {
      this.busy = false;
    }
  }

  /** Stops watching; the seconds from the watcher's start to the first byte, if it came. */
  stop(): number | undefined {
    clearInterval(this.timer);
    return this.firstAt === undefined ? undefined : round((this.firstAt - this.start) / 1000, 3);
  }
}

/** What {@link observeRun} saw of one Lifeboat run. */
export interface Observed<T> {
  value: T;
  /** Request to the first bytes read by restic or rsync (undefined when not seen). */
  firstByteS: number | undefined;
  cpu: CpuUse;
  /** The stack's CPU from the start to each checkpoint the run named (`stored`: its data stored). */
  cpuAt?: Record<string, CpuUse>;
  /** DynamoDB requests during the run, by caller, table and operation (the stack's /health). */
  dynamodb?: RequestCounts;
}

/** The DynamoDB request counts the stack's `GET /health` reports, if it does. */
async function dynamoCounts(endpoint: string | undefined): Promise<RequestCounts | undefined> {
  if (!endpoint) return undefined;
  const res = await fetch(`${endpoint}/health`).catch(() => undefined);
  const body = (await res?.json().catch(() => undefined)) as { dynamodbCalls?: RequestCounts } | undefined;
  return body?.dynamodbCalls;
}

/**
 * Runs `fn` (a timed backup, which sends its request at once) with the stack's CPU measured
 * around it and the first byte watched for. `fn` may call `checkpoint(name)` at a moment of the
 * run (the first of each name counts): the stack's CPU is read then too (`cpuAt`).
 */
export async function observeRun<T>(
  home: string,
  fn: (checkpoint: (name: string) => void) => Promise<T>,
): Promise<Observed<T>> {
  const pids = await readPids(join(home, 'pids.json'));
  const calls = await dynamoCounts(pids?.endpoint);
  const before = await stackProcesses(home);
  const watcher = pids?.children.runner ? new FirstByteWatcher(pids.children.runner) : undefined;
  const checkpoints = new Map<string, ReturnType<typeof stackProcesses>>();
  const checkpoint = (name: string) => {
    if (!checkpoints.has(name)) checkpoints.set(name, stackProcesses(home));
  };
  let firstByteS: number | undefined;
  let value: T;
  try {
    value = await fn(checkpoint);
  } finally {
    firstByteS = watcher?.stop();
  }
  const cpu = cpuBetween(before, await stackProcesses(home));
  const callsAfter = await dynamoCounts(pids?.endpoint);
  const dynamodb = calls && callsAfter ? countsBetween(calls, callsAfter) : undefined;
  const cpuAt: Record<string, CpuUse> = {};
  for (const [name, at] of checkpoints) cpuAt[name] = cpuBetween(before, await at);
  return { value, firstByteS, cpu, ...(checkpoints.size > 0 && { cpuAt }), ...(dynamodb && { dynamodb }) };
}

/** The fields `bench full` adds for its restic and rsync runs: medians over its rounds. */
export interface ObservedSummary {
  /**
   * CPU seconds of the control plane during the restic run to READY (target <= 1 s), its
   * verification included: the backup's orchestration and the polls that follow it, made as
   * `lifeboat backup --wait` makes them.
   */
  control_cpu_s?: number;
  control_cpu_spread?: { min: number; max: number };
  /**
   * The same up to the data stored (the first poll that sees the verification under way, so
   * up to one poll interval late): the instant the ratios are taken at, the verification
   * after it reported apart as its time is.
   */
  control_cpu_stored_s?: number;
  first_byte_s?: number;
  /** DynamoDB requests during the restic run (the follow's polls included, as `--wait` makes them). */
  ddb_calls?: number;
  control_cpu_rsync_s?: number;
  first_byte_rsync_s?: number;
}

const medianOf = (values: readonly (number | undefined)[]): number | undefined => {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length > 0 ? round(median(known), 3) : undefined;
};

/** The summary fields of the observed runs (every round's), by datastore label (`restic`, `rsync`). */
export function observedSummary(
  runs: Readonly<Record<string, readonly Observed<unknown>[]>>,
): ObservedSummary {
  const out: ObservedSummary = {};
  const restic = runs.restic ?? [];
  const rsync = runs.rsync ?? [];
  const put = <K extends keyof ObservedSummary>(key: K, value: ObservedSummary[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  if (restic.length > 0) {
    const control = restic.map((o) => o.cpu.control);
    put('control_cpu_s', medianOf(control));
    out.control_cpu_spread = { min: Math.min(...control), max: Math.max(...control) };
    put('control_cpu_stored_s', medianOf(restic.map((o) => o.cpuAt?.stored?.control)));
    put('first_byte_s', medianOf(restic.map((o) => o.firstByteS)));
    put('ddb_calls', medianOf(restic.map((o) => o.dynamodb?.total)));
  }
  if (rsync.length > 0) {
    put('control_cpu_rsync_s', medianOf(rsync.map((o) => o.cpu.control)));
    put('first_byte_rsync_s', medianOf(rsync.map((o) => o.firstByteS)));
  }
  return out;
}
