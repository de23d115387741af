/**
 * A child process kept running, as systemd's `Restart=` keeps a service: when it ends for any
 * reason but {@link KeptChild.stop} (a crash, an OOM kill, a SIGKILL), it is started again after
 * 1 s, then 2, 4, ... up to 30 s, the delay starting over once a child stayed up a minute. Local
 * mode keeps its runner this way, so a runner that dies mid-task comes back within seconds,
 * reconciles what it left (runner/reconcile.ts) and answers its task's execution at once,
 * instead of leaving it to the heartbeat and Cleanup timeouts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { ChildSpec, Log } from './control-plane.ts';

/** Delays between starts (ms). */
export interface RestartBackoff {
  initialMs: number;
  maxMs: number;
  /** A child that ran at least this long is restarted after `initialMs` again. */
  resetAfterMs: number;
}

export const DEFAULT_RESTART: RestartBackoff = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 };

/** A child under {@link keepRunning}. */
export interface KeptChild {
  /** The running child's pid (undefined while it waits to be started again). */
  readonly pid: number | undefined;
  /** How many times it was started. */
  readonly starts: number;
  /** Stops it for good: no restart; SIGTERM, then SIGKILL after `graceMs`. */
  stop(): Promise<void>;
}

/** What {@link keepRunning} needs. */
export interface KeepOptions {
  name: string;
  /** Starts one instance (default: {@link spawnLogged} of a spec). */
  start: () => ChildProcess;
  /** Told each new pid (local mode writes it to pids.json). */
  onStart?: (pid: number) => void;
  log: Log;
  backoff?: RestartBackoff;
  /** SIGTERM to SIGKILL at stop (default 5 s). */
  graceMs?: number;
}

/** Starts `opts.start()` now and again whenever it ends, until stopped. */
export function keepRunning(opts: KeepOptions): KeptChild {
  const backoff = opts.backoff ?? DEFAULT_RESTART;
  let delay = backoff.initialMs;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  let starts = 0;

  const launch = () => {
    timer = undefined;
    if (stopping) return;
    const startedAt = Date.now();
    const current = opts.start();
    child = current;
    starts++;
    exited = new Promise<void>((resolve) => {
      let ended = false;
      const onEnd = (how: Record<string, unknown>) => {
        if (ended) return;
        ended = true;
        if (child === current) child = undefined;
        resolve();
        if (stopping) return;
        if (Date.now() - startedAt >= backoff.resetAfterMs) delay = backoff.initialMs;
        opts.log({
          level: 'warn',
          msg: `${opts.name} ended: starting it again`,
          ...how,
          upMs: Date.now() - startedAt,
          restartInMs: delay,
        });
        timer = setTimeout(launch, delay);
        delay = Math.min(backoff.maxMs, delay * 2);
      };
      current.once('exit', (code, signal) => onEnd({ code, signal }));
      // Could not start at all (ENOENT, EACCES): no 'exit' follows.
      current.on('error', (error) => onEnd({ error: error.message }));
    });
    if (current.pid !== undefined) opts.onStart?.(current.pid);
  };
  launch();

  return {
    get pid() {
      return child?.pid;
    },
    get starts() {
      return starts;
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      const current = child;
      if (!current || current.exitCode !== null || current.signalCode !== null) return;
      current.kill('SIGTERM');
      const kill = setTimeout(() => current.kill('SIGKILL'), opts.graceMs ?? 5000);
      await exited;
      clearTimeout(kill);
    },
  };
}

/**
 * Spawns `spec` with `env` (no shell), each line of its stdout and stderr logged as the control
 * plane's other children's are (`{child: name, msg: line}`); a line split across reads is
 * logged whole.
 */
export function spawnLogged(
  spec: ChildSpec,
  env: Record<string, string | undefined>,
  log: Log,
): ChildProcess {
  const child = spawn(spec.command, spec.args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const emit = (line: string) => {
    if (line.trim()) log({ level: 'info', child: spec.name, msg: line });
  };
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) emit(line);
    });
    stream?.on('end', () => emit(pending));
  }
  return child;
}
