/**
 * `--wait` and `--follow`: poll `GET /executions/{id}` until the execution ends, showing progress
 * on stderr. On a terminal, a cli-progress bar with phase, bytes, rate and ETA; with
 * `--no-progress` or when stderr is not a TTY, one line per state or phase change instead, so
 * logs stay readable. The outcome decides the exit code: 0 only when SUCCEEDED.
 */
import { createRequire } from 'node:module';
import type { Execution } from '#core/model.ts';
import type { ApiClient } from './client.ts';
import { CliError, ConnectionError } from './errors.ts';
import { formatBytes, type OutputOptions, printJson, printLines } from './output.ts';

/** States after which an execution never changes again. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

/** How often to poll. `LIFEBOAT_POLL_INTERVAL_MS` overrides it (tests use a short one). */
function pollIntervalMs(): number {
  const fromEnv = Number(process.env.LIFEBOAT_POLL_INTERVAL_MS);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : 1000;
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
 * Polls the execution every second until it ends and answers its last state. Ctrl-C stops
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
        await sleep(pollIntervalMs());
        continue;
      }
      reporter.update(execution);
      if (TERMINAL_STATES.has(execution.state)) return execution;
      await sleep(pollIntervalMs());
    }
  } finally {
    reporter.stop();
    process.removeListener('SIGINT', onInterrupt);
  }
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
