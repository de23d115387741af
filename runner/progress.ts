/**
 * Progress of a running task (`phase`, `bytesDone`, `bytesTotal`), written to this host's own
 * record of the progress table (`<hostId>/<executionId>`, functions/repo/progress.ts), which the
 * API merges into the execution it shows, so `lifeboat execution show --follow` sees it. The
 * runner never writes execution records. Byte counts are written at most as often as the CLI's
 * `--wait` polls (core/follow-interval.ts: every second for ten seconds, then less often, at
 * most every 3 s); a phase change is written at once. A failed write is logged and never fails
 * the task.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { followIntervalMs } from '#core/follow-interval.ts';
import { type ProgressFields, writeProgress } from '#platform/progress.ts';
import type { Logger } from './log.ts';

export type { ProgressFields };

/** Where progress goes; a fake in unit tests. */
export type ProgressSink = (executionId: string, fields: ProgressFields) => Promise<void>;

/**
 * The progress table, under host `hostId`'s keys (the runner's IAM policy allows only keys
 * starting with its own host id, and only the progress attributes); with `client` when given
 * (the host session's, in local mode), else the shared one.
 */
export function dynamoProgressSink(hostId: number, client?: DynamoDBDocumentClient): ProgressSink {
  return (executionId, fields) => writeProgress(hostId, executionId, fields, client);
}

/** The execution id of a task: the part of its taskId before the first `/`. */
export function executionIdOf(taskId: string): string {
  return taskId.split('/')[0] ?? taskId;
}

/** Reports one task's progress. */
export interface Progress {
  phase(name: string): void;
  bytes(done: number, total: number): void;
  /** Writes what is still pending (call at the end of the task). */
  flush(): Promise<void>;
}

/**
 * A {@link Progress} for `taskId` writing byte counts to `sink` at most every
 * `intervalMs(time since the task started)`, or every `intervalMs` when a number.
 */
export function taskProgress(
  taskId: string,
  sink: ProgressSink,
  log: Logger,
  intervalMs: number | ((elapsedMs: number) => number) = followIntervalMs,
): Progress {
  const executionId = executionIdOf(taskId);
  const startedAt = Date.now();
  const interval = () => (typeof intervalMs === 'number' ? intervalMs : intervalMs(Date.now() - startedAt));
  let pending: ProgressFields = {};
  let lastWrite = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  const write = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (Object.keys(pending).length === 0) return writing;
    const fields = pending;
    pending = {};
    lastWrite = Date.now();
    writing = writing.then(() =>
      sink(executionId, fields).catch((error: unknown) => {
        log('warn', 'progress not recorded', { error: (error as Error).name });
      }),
    );
    return writing;
  };
  const schedule = () => {
    const wait = lastWrite + interval() - Date.now();
    if (wait <= 0) void write();
    else timer ??= setTimeout(() => void write(), wait);
  };
  return {
    phase(name) {
      pending = { ...pending, phase: name };
      void write();
    },
    bytes(done, total) {
      pending = {
        ...pending,
        bytesDone: Math.max(0, Math.round(done)),
        bytesTotal: Math.max(0, Math.round(total)),
      };
      schedule();
    },
    flush: () => write(),
  };
}
