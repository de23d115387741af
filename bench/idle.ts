/**
 * `npm run bench -- idle`: the embedded stack with its runner (as `npm start` runs it, in a
 * scratch home on free ports) with nothing to do, measured over 60 s once it has settled: the
 * CPU of every process of the stack (the supervisor and its threads, the DynamoDB Local JVM, the
 * runner and whatever they start), as a percentage of one core.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuBetween, describeCpu, parseStat, stackProcesses } from './control-cpu.ts';
import { loadText, round } from './measure.ts';
import { startStack } from './stack.ts';

/** The last stdout line of `bench idle`. */
export interface IdleSummary {
  idle_cpu_pct: number;
  control_cpu_pct: number;
  runner_cpu_pct: number;
  dynamodb_cpu_pct: number;
  supervisor_cpu_pct: number;
  window_s: number;
}

export interface IdleOptions {
  /** Seconds measured (60 in the issue). */
  windowSeconds?: number;
  /** Seconds waited after the runner registered before measuring. */
  settleSeconds?: number;
  log: (line: string) => void;
}

/** CPU seconds of each thread of `pid` by thread name, for telling loops apart. */
async function threads(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tids) {
    const stat = parseStat(
      await readFile(join('/proc', String(pid), 'task', tid, 'stat'), 'utf8').catch(() => ''),
    );
    if (stat) out.set(`${stat.comm}#${tid}`, stat.self);
  }
  return out;
}

/** Waits until the runner has registered (its log says so) or `timeoutMs` passes. */
async function runnerRegistered(logPath: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = await readFile(logPath, 'utf8').catch(() => '');
    if (text.includes('runner registered')) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the runner did not register within ${timeoutMs / 1000} s`);
}

/** Runs the benchmark; the stack is stopped and its home removed before it returns or throws. */
export async function runIdle(opts: IdleOptions): Promise<IdleSummary> {
  const { log } = opts;
  const window = opts.windowSeconds ?? Number(process.env.LIFEBOAT_BENCH_IDLE_SECONDS ?? 60);
  const settle = opts.settleSeconds ?? Number(process.env.LIFEBOAT_BENCH_IDLE_SETTLE ?? 20);
  log(`load average at start: ${loadText()}`);
  const stack = await startStack();
  try {
    await runnerRegistered(stack.logPath);
    log(`stack up in ${stack.home}; runner registered; settling ${settle} s`);
    await new Promise((r) => setTimeout(r, settle * 1000));
    const before = await stackProcesses(stack.home);
    const threadsBefore = new Map(
      await Promise.all(before.map(async (p) => [p.pid, await threads(p.pid)] as const)),
    );
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, window * 1000));
    const after = await stackProcesses(stack.home);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuBetween(before, after);
    log(`over ${seconds.toFixed(1)} s: ${describeCpu(cpu, 10)}; load ${loadText()}`);
    for (const p of cpu.byProcess.slice(0, 4)) {
      if (p.seconds <= 0.05) continue;
      const t1 = await threads(p.pid);
      const t0s = threadsBefore.get(p.pid) ?? new Map<string, number>();
      const busy = [...t1]
        .map(([name, s]) => [name, s - (t0s.get(name) ?? 0)] as const)
        .filter(([, s]) => s > 0)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([name, s]) => `${name} ${s.toFixed(2)}`)
        .join(', ');
      log(`  ${p.comm}[${p.pid}, ${p.role}] threads: ${busy}`);
    }
    const pct = (s: number) => round((100 * s) / seconds, 2);
    return {
      idle_cpu_pct: pct(cpu.control + cpu.byRole.runner),
      control_cpu_pct: pct(cpu.control),
      runner_cpu_pct: pct(cpu.byRole.runner),
      dynamodb_cpu_pct: pct(cpu.byRole.dynamodb),
      supervisor_cpu_pct: pct(cpu.byRole.supervisor + cpu.byRole.other),
      window_s: round(seconds, 1),
    };
  } finally {
    log('stopping the local stack');
    await stack.down();
  }
}
