/**
 * Task tokens of `.waitForTaskToken` states: one fresh random token per task, settled by
 * SendTaskSuccess / SendTaskFailure, kept alive by SendTaskHeartbeat. The interpreter enforces
 * neither HeartbeatSeconds nor (for these states) TimeoutSeconds, so the clocks are kept here.
 */
import { randomBytes } from 'node:crypto';
import { SfnApiError, TaskFailed } from './errors.ts';

/** What a waiting task was scheduled with. */
export interface TaskWait {
  executionArn: string;
  stateName: string;
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
}

interface Pending extends TaskWait {
  resolve(output: unknown): void;
  reject(err: Error): void;
  heartbeatTimer?: NodeJS.Timeout;
  timeoutTimer?: NodeJS.Timeout;
}

// Tokens look like AWS's: long opaque strings; anything else is "invalid", not merely "unknown".
const TOKEN_PATTERN = /^lbtt-[A-Za-z0-9_-]{43}$/;

/** The pending task tokens of every execution. */
export class TaskTokens {
  private readonly pending = new Map<string, Pending>();

  /** Register a new task; `result` settles with its output or a {@link TaskFailed}. */
  create(wait: TaskWait): { token: string; result: Promise<unknown> } {
    const token = `lbtt-${randomBytes(32).toString('base64url')}`;
    const result = new Promise<unknown>((resolve, reject) => {
      const entry: Pending = { ...wait, resolve, reject };
      this.pending.set(token, entry);
      if (wait.timeoutSeconds) {
        entry.timeoutTimer = setTimeout(
          () => this.fail(token, new TaskFailed('States.Timeout', `task ${wait.stateName} timed out`)),
          wait.timeoutSeconds * 1000,
        );
      }
      this.armHeartbeat(token, entry);
    });
    return { token, result };
  }

  /** SendTaskSuccess: `output` is the JSON text the caller sent. */
  succeed(token: string, output: string): void {
    const entry = this.take(token);
    let value: unknown;
    try {
      value = JSON.parse(output);
    } catch {
      this.pending.set(token, entry);
      throw new SfnApiError('InvalidOutput', 'Invalid JSON in output');
    }
    this.clear(entry);
    entry.resolve(value);
  }

  /** SendTaskFailure: the state fails with Error `error` and Cause `cause`. */
  failure(token: string, error: string | undefined, cause: string | undefined): void {
    const entry = this.take(token);
    this.clear(entry);
    entry.reject(new TaskFailed(error ?? 'States.TaskFailed', cause ?? ''));
  }

  /** SendTaskHeartbeat: restart the heartbeat clock. */
  heartbeat(token: string): void {
    const entry = this.get(token);
    this.armHeartbeat(token, entry);
  }

  /** Forget one task (its message could not be sent); its promise never settles. */
  cancel(token: string): void {
    const entry = this.pending.get(token);
    if (!entry) return;
    this.clear(entry);
    this.pending.delete(token);
  }

  /** Forget every task of an execution (it was stopped); their promises never settle. */
  cancelExecution(executionArn: string): void {
    for (const [token, entry] of this.pending) {
      if (entry.executionArn !== executionArn) continue;
      this.clear(entry);
      this.pending.delete(token);
    }
  }

  /** Number of tasks waiting (for tests and /health). */
  get size(): number {
    return this.pending.size;
  }

  private armHeartbeat(token: string, entry: Pending): void {
    if (!entry.heartbeatSeconds) return;
    if (entry.heartbeatTimer) clearTimeout(entry.heartbeatTimer);
    entry.heartbeatTimer = setTimeout(
      () =>
        this.fail(
          token,
          new TaskFailed(
            'States.HeartbeatTimeout',
            `task ${entry.stateName} sent no heartbeat for ${entry.heartbeatSeconds} seconds`,
          ),
        ),
      entry.heartbeatSeconds * 1000,
    );
  }

  private fail(token: string, err: TaskFailed): void {
    const entry = this.pending.get(token);
    if (!entry) return;
    this.clear(entry);
    this.pending.delete(token);
    entry.reject(err);
  }

  private get(token: string): Pending {
    if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) {
      throw new SfnApiError('InvalidToken', 'Invalid Task Token');
    }
    const entry = this.pending.get(token);
    // AWS answers TaskTimedOut for a token whose task is no longer open, whatever ended it.
    if (!entry) throw new SfnApiError('TaskTimedOut', 'Task Timed Out');
    return entry;
  }

  private take(token: string): Pending {
    const entry = this.get(token);
    this.pending.delete(token);
    return entry;
  }

  private clear(entry: Pending): void {
    if (entry.heartbeatTimer) clearTimeout(entry.heartbeatTimer);
    if (entry.timeoutTimer) clearTimeout(entry.timeoutTimer);
  }
}
