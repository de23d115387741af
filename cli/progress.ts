/**
 * `--wait` and `--follow`: poll `GET /executions/{id}` until the execution ends, showing progress
 * on stderr. On a terminal, a cli-progress bar with phase, bytes, rate and ETA; with
 * `--no-progress` or when stderr is not a TTY, one line per state or phase change instead, so
 * logs stay readable. The outcome decides the exit code: 0 only when SUCCEEDED.
 */
import { createRequire } from 'node:module';
import { followIntervalMs } from '#core/follow-interval.ts';
import type { Execution } from '#core/model.ts';
import type { ApiClient } from './client.ts';
import { CliError, ConnectionError } from './errors.ts';
import { formatBytes, type OutputOptions, printJson, printLines } from './output.ts';

/** States after which an execution never changes again. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

/**
 * How long to wait before the next poll, `elapsedMs` into the wait ({@link followIntervalMs}:
 * every second for the first ten, then a tenth of the time waited so far, at most every 3 s,
 * as the runner writes progress). Each poll costs the control
 * plane an authorizer and an API invocation and their table reads (on a one-machine install,
 * CPU taken from the backup it waits for); the end of a long execution is then seen at most a
 * tenth of its duration (3 s) late. `LIFEBOAT_POLL_INTERVAL_MS` fixes it (tests use a short one).
 */
export function pollIntervalMs(elapsedMs: number, env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = Number(env.LIFEBOAT_POLL_INTERVAL_MS);
  if (Number.isFinite(fromEnv) && fromEnv > 0) return fromEnv;
  return followIntervalMs(elapsedMs);
}

/** Consecutive failed polls (API unreachable or 5xx) tolerated before giving up. */
const MAX_POLL_FAILURES = 5;

interface Reporter {
  update(execution: Execution): void;
  stop(): void;
}

/** The part of cli-progress we use (the package ships no types). */
interface ProgressBar {
  start(total: number, value: number, payload: Record<string, string>): void;
  update(value: number, payload: Record<string, string>): void;
  setTotal(total: number): void;
  stop(): void;
}
type ProgressBarClass = new (options: Record<string, unknown>) => ProgressBar;

/** A bar on the terminal: phase, bytes done / total, rate, ETA. */
class BarReporter implements Reporter {
  private bar: ProgressBar | undefined;
  private first: { at: number; bytes: number } | undefined;

  update(execution: Execution): void {
    const now = Date.now();
    this.first ??= { at: now, bytes: execution.bytesDone };
    const seconds = (now - this.first.at) / 1000;
    const rate = seconds > 0 ? (execution.bytesDone - this.first.bytes) / seconds : 0;
    const payload = {
      phase: `${execution.state} ${execution.phase}`,
      done: formatBytes(execution.bytesDone) ?? '0 B',
      size: execution.bytesTotal > 0 ? (formatBytes(execution.bytesTotal) ?? '?') : '?',
      rate: `${formatBytes(Math.max(0, Math.round(rate)))}/s`,
    };
    const total = Math.max(execution.bytesTotal, 1);
    if (!this.bar) {
      const { SingleBar } = createRequire(import.meta.url)('cli-progress') as { SingleBar: ProgressBarClass };
      this.bar = new SingleBar({
        stream: process.stderr,
        format: '{phase} |{bar}| {percentage}% {done}/{size} {rate} ETA {eta_formatted}',
        hideCursor: true,
        etaBuffer: 30,
      });
      this.bar.start(total, execution.bytesDone, payload);
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(execution.bytesDone, payload);
  }

  stop(): void {
    this.bar?.stop();
  }
}

/** One stderr line each time the state or the phase changes. */
class LineReporter implements Reporter {
  private last = '';

  update(execution: Execution): void {
    const key = `${execution.state} ${execution.phase}`;
    if (key === this.last) return;
    this.last = key;
    const bytes =
      execution.bytesTotal > 0
        ? ` (${formatBytes(execution.bytesDone)} of ${formatBytes(execution.bytesTotal)})`
        : '';
    process.stderr.write(`execution ${execution.id}: ${execution.state} ${execution.phase}${bytes}\n`);
  }

  stop(): void {}
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls the execution (every second, less often as the wait grows: {@link pollIntervalMs}) until
 * it ends and answers its last state. Ctrl-C stops
 * following (exit 130) without touching the execution, which goes on.
 */
export async function followExecution(client: ApiClient, id: string, showBar: boolean): Promise<Execution> {
  const reporter: Reporter = showBar && process.stderr.isTTY ? new BarReporter() : new LineReporter();
  const onInterrupt = () => {
    reporter.stop();
    process.stderr.write(
      `lifeboat: stopped following execution ${id}; it goes on (lifeboat execution show ${id})\n`,
    );
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  let failures = 0;
  const started = Date.now();
  const pause = () => sleep(pollIntervalMs(Date.now() - started));
  try {
    for (;;) {
      let execution: Execution;
      try {
        execution = await client.get<Execution>(`/executions/${encodeURIComponent(id)}`);
        failures = 0;
      } catch (error) {
        // A restarting local stack or a throttled gateway should not end a long wait.
        const transient =
          error instanceof ConnectionError || (error instanceof CliError && error.exitCode === 1);
        failures += 1;
        if (!transient || failures >= MAX_POLL_FAILURES) throw error;
        await pause();
        continue;
      }
      reporter.update(execution);
      if (TERMINAL_STATES.has(execution.state)) return execution;
      await pause();
    }
  } finally {
    reporter.stop();
    process.removeListener('SIGINT', onInterrupt);
  }
}

/**
 * The end of a command that queued `execution`. Without `wait`: prints it (the object with
 * `--json`, its line otherwise) and answers undefined. With it: its id on stderr, then follows it
 * and answers it ended, for the caller to report ({@link reportOutcome}).
 */
export async function queuedOrFollowed(
  client: ApiClient,
  execution: Execution,
  wait: boolean | undefined,
  context: { output: OutputOptions; progress: boolean },
): Promise<Execution | undefined> {
  if (!wait) {
    if (context.output.json) printJson(execution);
    else printLines([`execution ${execution.id} ${execution.state}${describeTarget(execution)}`]);
    return undefined;
  }
  if (!context.output.json) process.stderr.write(`execution ${execution.id} ${execution.state}\n`);
  return followExecution(client, execution.id, context.progress);
}

/**
 * Prints the ended execution (the object with `--json`, a summary line otherwise) and throws
 * a {@link CliError} (exit 1, the execution's error on stderr) unless it SUCCEEDED.
 */
export function reportOutcome(execution: Execution, output: OutputOptions): void {
  if (output.json) printJson(execution);
  else printLines([`execution ${execution.id} ${execution.state}${describeTarget(execution)}`]);
  if (execution.state === 'SUCCEEDED') return;
  const error = execution.error ? `: ${execution.error.name}: ${execution.error.message}` : '';
  throw new CliError(`execution ${execution.id} ${execution.state}${error}`, 1);
}

/** ` (backup of VM 3 to datastore 100, image 12)`: what an execution works on. */
export function describeTarget(execution: Execution): string {
  const parts = [
    execution.vmId !== undefined ? `VM ${execution.vmId}` : undefined,
    execution.datastoreId !== undefined ? `datastore ${execution.datastoreId}` : undefined,
    execution.imageId !== undefined ? `image ${execution.imageId}` : undefined,
  ].filter((part) => part !== undefined);
  return parts.length > 0 ? ` (${execution.kind}: ${parts.join(', ')})` : ` (${execution.kind})`;
}
