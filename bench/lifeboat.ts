/**
 * One Lifeboat backup followed as an operator follows it with `lifeboat backup VM --wait`:
 * POST /vms/{id}/backup, then GET /executions/{id} at the CLI's own interval (cli/progress.ts
 * `pollIntervalMs`: every second for ten seconds, then a tenth of the time waited, at most every
 * 3 s) until the execution ends, then one GET /images/{id}. Each poll costs the control plane a
 * gateway request, the authorizer's and the API's table reads: what an operator's wait costs it,
 * so the stack's CPU measured around the run (bench/first-byte.ts) is the backup's own.
 *
 * The times are not taken from when a poll happened to see a change but from what the control
 * plane and the runner record, counted from the bench's wall clock just before the POST
 * (`Date.now()`; the stack runs on this machine, so the clocks agree), to the millisecond:
 * - `seconds`, to the image READY: the instant Commit recorded. A chain point (MODE=INCREMENT)
 *   keeps it as its `date` (Commit's clock as it starts the commit, the READY write following
 *   within a few table requests). A plain FULL image keeps none: the Commit Lambda's own
 *   `CommitBackup done` line for the execution in the stack's log gives it (just after the write).
 * - `executionSeconds`: the execution's `endedAt`, written by Release.
 * - `verifySeconds`, the runner's `verifying` phase (the stored disks read back and hashed): from
 *   the runner's `verifying stored backup` line (runner/tasks/backup.ts) to the `verifiedAt` the
 *   image (or its chain point) records.
 * A figure whose record is missing (a log level that drops info lines) is approximated, READY
 * by `endedAt` and the verification by the polls, and named in `approximate`. The timeline keeps
 * what the polls saw (state and phase changes, first bytes) as coarse marks, beside the recorded
 * instants.
 */
import { readFile } from 'node:fs/promises';
import { pollIntervalMs, TERMINAL_STATES } from '#cli/progress.ts';
import { VERIFYING_MESSAGE } from '#runner/tasks/backup.ts';
import type { Api, Stack } from './stack.ts';

/** One change, `t` seconds after the API call. */
export interface Mark {
  t: number;
  what: string;
}

/** The outcome of a timed backup. */
export interface LifeboatRun {
  /** API call to the image READY (Commit's recorded instant). */
  seconds: number;
  /** API call to the execution SUCCEEDED (its `endedAt`, Release done). */
  executionSeconds: number;
  /**
   * The verification after the backup (phase `verifying`): the runner's line as it starts to
   * `verifiedAt`. `seconds - verifySeconds` is the backup up to the data stored.
   */
  verifySeconds: number;
  imageId: number;
  executionId: string;
  /** The polls' marks and the recorded instants, in time order. */
  timeline: Mark[];
  /**
   * Figures whose own record was missing, so approximated (empty when all were recorded):
   * `seconds` by the execution's `endedAt` (READY was no later), `verifySeconds` by the polls.
   */
  approximate: ('seconds' | 'verifySeconds')[];
}

/** The message of the Commit Lambda's success line (functions/middleware.ts `outcomeLog`). */
export const COMMIT_DONE_MESSAGE = 'CommitBackup done';

/** One line of the stack's log: its own clock, message and fields. */
export interface LogEntry {
  /** Epoch ms of the line's `time`. */
  at: number;
  /** The child process that wrote it (`runner`), absent for the supervisor and its Lambdas. */
  child?: string;
  message: string;
  fields: Record<string, unknown>;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The entries of the supervisor log (local/supervisor.ts). The supervisor and the Lambdas (its
 * worker threads) write JSON lines `{time, level, message|msg, ...}`; a child's line (the
 * runner's) comes wrapped as `{time, child, msg: LINE}` with the supervisor's time of reading it,
 * and when LINE is the child's own JSON line, its `time` (when the child wrote it) is the one kept.
 */
export function logEntries(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    const outer = parseObject(line.trim());
    if (!outer) continue;
    const inner = typeof outer.msg === 'string' ? parseObject(outer.msg) : undefined;
    const entry = inner ?? outer;
    const at = Date.parse(String(entry.time));
    if (!Number.isFinite(at)) continue;
    out.push({
      at,
      ...(typeof outer.child === 'string' && { child: outer.child }),
      message: String(entry.message ?? entry.msg ?? ''),
      fields: entry,
    });
  }
  return out;
}

/** The instants a backup's records keep (epoch ms), each absent when nothing records it. */
export interface Recorded {
  /** The image READY: the chain point's `date`, else the Commit Lambda's log line. */
  ready?: number;
  /** The runner's `verifying stored backup` line. */
  verifying?: number;
  /** The image's (or chain point's) `verifiedAt`. */
  verified?: number;
}

/**
 * The recorded instants of backup execution `executionId`, requested at `requestedAt`, from its
 * image as GET /images/{id} answers it once the execution ended and the stack's log entries.
 * Only instants from `requestedAt` on count (an older chain point or line is another backup's).
 */
export function recordedInstants(
  executionId: string,
  requestedAt: number,
  image: Record<string, unknown>,
  log: readonly LogEntry[],
): Recorded {
  const ms = (value: unknown) => {
    const at = typeof value === 'string' ? Date.parse(value) : Number.NaN;
    return Number.isFinite(at) && at >= requestedAt ? at : undefined;
  };
  // A chain's image: its last point is the one this backup committed (its own date and verifiedAt).
  const increments = Array.isArray(image.increments) ? (image.increments as Record<string, unknown>[]) : [];
  const point = increments.at(-1);
  const lines = (match: (e: LogEntry) => boolean) => log.filter((e) => e.at >= requestedAt && match(e));
  const ready =
    ms(point?.date) ??
    lines((e) => e.message === COMMIT_DONE_MESSAGE && e.fields.executionId === executionId)[0]?.at;
  const verified = ms(point ? point.verifiedAt : image.verifiedAt);
  // A runner task id is `<executionId>/<step>` (runner/progress.ts executionIdOf). A task run
  // again logs the line again: the last start before `verifiedAt` is the read-back it records.
  const verifying = lines(
    (e) =>
      e.child === 'runner' &&
      e.message === VERIFYING_MESSAGE &&
      String(e.fields.taskId ?? '').split('/')[0] === executionId &&
      (verified === undefined || e.at <= verified),
  ).at(-1)?.at;
  return {
    ...(ready !== undefined && { ready }),
    ...(verifying !== undefined && { verifying }),
    ...(verified !== undefined && { verified }),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls GET /executions/{id} as `lifeboat ... --wait` does (cli/progress.ts `pollIntervalMs`,
 * counted from `since`, epoch ms) until the execution ends; `onPoll` sees every answer. Answers
 * the last one; throws when it still runs after `timeoutMs`.
 */
export async function followToEnd(
  api: Api,
  executionId: string,
  since: number,
  onPoll: (execution: Record<string, unknown>) => void = () => {},
  timeoutMs = 30 * 60_000,
): Promise<Record<string, unknown>> {
  for (;;) {
    const execution = await api('GET', `/executions/${executionId}`);
    onPoll(execution);
    if (TERMINAL_STATES.has(String(execution.state))) return execution;
    if (Date.now() - since > timeoutMs)
      throw new Error(`execution ${executionId} still ${execution.state}/${execution.phase}`);
    await sleep(pollIntervalMs(Date.now() - since));
  }
}

/** Seconds from `from` to `to` (epoch ms), to the millisecond. */
const secondsBetween = (from: number, to: number) => Math.round(to - from) / 1000;

/** Seconds from `from` (epoch ms) to the ISO 8601 instant a record keeps; throws when it has none. */
export function recordedSeconds(from: number, recorded: unknown): number {
  const at = typeof recorded === 'string' ? Date.parse(recorded) : Number.NaN;
  if (!Number.isFinite(at)) throw new Error(`no recorded instant (got ${JSON.stringify(recorded)})`);
  return secondsBetween(from, at);
}

/**
 * Requests a backup of `vmId` to `datastoreId`, follows it to its end and answers its recorded
 * times; throws if it does not succeed. `logPath` is the stack's log (the runner's and the
 * Lambdas' lines).
 */
export async function timeLifeboatBackup(
  stack: Pick<Stack, 'api' | 'logPath'>,
  vmId: number,
  datastoreId: number,
  options: {
    /** Start a new increment chain (a FULL) even if one exists. */
    reset?: boolean;
    timeoutMs?: number;
    /**
     * Called once, at the first poll that sees the data stored: the verification under way,
     * or the execution ended (no verification seen).
     */
    onStored?: () => void;
  } = {},
): Promise<LifeboatRun> {
  const { api } = stack;
  const requestedAt = Date.now();
  const polled: Mark[] = [];
  const mark = (what: string, at = Date.now()) => polled.push({ t: secondsBetween(requestedAt, at), what });
  const requested = await api('POST', `/vms/${vmId}/backup`, {
    datastoreId,
    ...(options.reset && { reset: true }),
  });
  const executionId = String(requested.id);
  mark(`POST answered: execution ${executionId} ${requested.state}`);
  let seen = '';
  let uploadStarted = false;
  let stored = false;
  // The polls' view of the verifying phase: the fallback when the runner's line is missing.
  let verifyFrom: number | undefined;
  let verifyTo: number | undefined;
  const execution = await followToEnd(
    api,
    executionId,
    requestedAt,
    (e) => {
      const now = Date.now();
      if (e.phase === 'verifying' || TERMINAL_STATES.has(String(e.state))) {
        if (!stored) options.onStored?.();
        stored = true;
      }
      if (e.phase === 'verifying') verifyFrom ??= now;
      else if (verifyFrom !== undefined) verifyTo ??= now;
      const state = `${e.state}/${e.phase}`;
      if (state !== seen) {
        mark(`execution ${state} (poll)`, now);
        seen = state;
      }
      if (!uploadStarted && Number(e.bytesDone) > 0) {
        uploadStarted = true;
        mark('first bytes uploaded (poll)', now);
      }
    },
    options.timeoutMs,
  );
  const polledEnd = Date.now();
  const imageId = execution.imageId;
  if (execution.state !== 'SUCCEEDED' || typeof imageId !== 'number') {
    throw new Error(
      `backup execution ${executionId} ended ${execution.state}: ${JSON.stringify(execution.error ?? {})}`,
    );
  }
  const executionSeconds = recordedSeconds(requestedAt, execution.endedAt);
  const image = await api('GET', `/images/${imageId}`);
  if (image.state !== 'READY') throw new Error(`image ${imageId} is ${image.state} after its backup`);
  const readLog = () => readFile(stack.logPath, 'utf8').catch(() => '');
  let rec = recordedInstants(executionId, requestedAt, image, logEntries(await readLog()));
  if (rec.ready === undefined || rec.verifying === undefined) {
    // A line still in a pipe: the log once more, a moment later.
    await sleep(500);
    rec = recordedInstants(executionId, requestedAt, image, logEntries(await readLog()));
  }
  const approximate: LifeboatRun['approximate'] = [];
  if (rec.ready === undefined) approximate.push('seconds');
  let verifySeconds: number;
  if (rec.verifying !== undefined && rec.verified !== undefined) {
    verifySeconds = secondsBetween(rec.verifying, rec.verified);
  } else {
    approximate.push('verifySeconds');
    verifySeconds = verifyFrom === undefined ? 0 : secondsBetween(verifyFrom, verifyTo ?? polledEnd);
  }
  const recordedMarks: Mark[] = [
    ...(rec.verifying !== undefined ? [{ at: rec.verifying, what: 'verifying started (runner log)' }] : []),
    ...(rec.verified !== undefined ? [{ at: rec.verified, what: 'verified (image verifiedAt)' }] : []),
    ...(rec.ready !== undefined ? [{ at: rec.ready, what: `image ${imageId} READY (Commit)` }] : []),
  ].map(({ at, what }) => ({ t: secondsBetween(requestedAt, at), what }));
  recordedMarks.push({ t: executionSeconds, what: 'execution SUCCEEDED (endedAt)' });
  return {
    seconds: rec.ready === undefined ? executionSeconds : secondsBetween(requestedAt, rec.ready),
    executionSeconds,
    verifySeconds,
    imageId,
    executionId,
    timeline: [...polled, ...recordedMarks].sort((a, b) => a.t - b.t),
    approximate,
  };
}

/** A run's timeline as log lines, and the figures approximated when any were. */
export function describeRun(run: LifeboatRun): string[] {
  const approximated = run.approximate.map((f) =>
    f === 'seconds' ? 'seconds to READY (by endedAt)' : 'verify seconds (by the polls)',
  );
  return [
    ...run.timeline.map((m) => `  +${m.t.toFixed(3)}s ${m.what}`),
    ...(approximated.length > 0 ? [`  not recorded, approximated: ${approximated.join(', ')}`] : []),
  ];
}
