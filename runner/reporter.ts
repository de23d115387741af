/**
 * Answers to the state machine waiting on a task token: SendTaskSuccess (the result as JSON,
 * under 256 KiB), SendTaskFailure (error = the typed error's `name`, cause = its message: no
 * stack, secrets masked) and SendTaskHeartbeat while the task works. A token the service no
 * longer knows (TaskTimedOut, InvalidToken, TaskDoesNotExist) means nobody waits any more: a
 * heartbeat refused that way aborts the task, an answer refused that way is dropped.
 */
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { oneLine } from '#core/errors.ts';
import { sfnClient } from '#platform/aws.ts';
import { retry } from '#platform/retry.ts';
import { ResultTooLarge } from './errors.ts';
import type { Logger } from './log.ts';

/** The three Step Functions calls the runner makes; a fake implements it in unit tests. */
export interface TaskTokenApi {
  sendSuccess(token: string, output: string): Promise<void>;
  sendFailure(token: string, error: string, cause: string): Promise<void>;
  sendHeartbeat(token: string): Promise<void>;
}

/** The Step Functions client (AWS, or the local shim through AWS_ENDPOINT_URL_SFN). */
export function sfnTaskTokenApi(client: SFNClient = sfnClient()): TaskTokenApi {
  return {
    sendSuccess: async (taskToken, output) => {
      await client.send(new SendTaskSuccessCommand({ taskToken, output }));
    },
    sendFailure: async (taskToken, error, cause) => {
      await client.send(new SendTaskFailureCommand({ taskToken, error, cause }));
    },
    sendHeartbeat: async (taskToken) => {
      await client.send(new SendTaskHeartbeatCommand({ taskToken }));
    },
  };
}

/** Error names Step Functions answers for a token whose task no longer waits. */
export const GONE_TOKEN_ERRORS = ['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist'] as const;

/** True when `error` says the task token is no longer waited on. */
export function isGoneToken(error: unknown): boolean {
  return error instanceof Error && (GONE_TOKEN_ERRORS as readonly string[]).includes(error.name);
}

/** SendTaskSuccess `output` limit. */
export const MAX_OUTPUT_BYTES = 256 * 1024;
const MAX_ERROR_CHARS = 256;
const MAX_CAUSE_CHARS = 4096;
/** Secret values shorter than this are not masked (masking `1` would shred every message). */
const MIN_SECRET_LENGTH = 4;

/** What SendTaskFailure gets for `error`. */
export interface FailureShape {
  error: string;
  cause: string;
}

/**
 * The failure as the state machine sees it: `error` = the error's class name (the contract the
 * Retry/Catch rules match), `cause` = its one message, never a stack; any of `secrets` that
 * shows up (a tool echoing its environment, say) is masked.
 */
export function shapeFailure(error: unknown, secrets: readonly string[] = []): FailureShape {
  const name = error instanceof Error && error.name ? error.name : 'Error';
  let cause = error instanceof Error ? error.message : String(error);
  for (const secret of secrets) {
    if (secret.length >= MIN_SECRET_LENGTH) cause = cause.split(secret).join('***');
  }
  return {
    error: name.replace(/[^A-Za-z0-9_.:-]/g, '').slice(0, MAX_ERROR_CHARS) || 'Error',
    // One line: a check may quote a task's value (a BASE_PATH with a newline, say).
    cause: oneLine(cause, MAX_CAUSE_CHARS),
  };
}

/** The result as SendTaskSuccess output; ResultTooLarge when it does not fit. */
export function encodeOutput(result: unknown): string {
  const output = JSON.stringify(result ?? {});
  const bytes = Buffer.byteLength(output);
  if (bytes > MAX_OUTPUT_BYTES) {
    throw new ResultTooLarge(`the task's result is ${bytes} bytes, over the ${MAX_OUTPUT_BYTES}-byte limit`);
  }
  return output;
}

/** How an answer went: delivered, or nobody waits for it any more. */
export type Delivery = 'sent' | 'gone';

const ANSWER_ATTEMPTS = 4;

/** Sends answers and heartbeats for tasks, retrying transient failures of the calls. */
export class Reporter {
  constructor(
    private readonly api: TaskTokenApi,
    private readonly log: Logger,
    private readonly retryDelayMs = 1000,
  ) {}

  /** SendTaskSuccess with `result`; a result too large is reported as a failure instead. */
  async succeed(token: string, result: unknown, log: Logger = this.log): Promise<Delivery> {
    let output: string;
    try {
      output = encodeOutput(result);
    } catch (error) {
      return this.fail(token, error, [], log);
    }
    return this.deliver('success', () => this.api.sendSuccess(token, output), log);
  }

  /** SendTaskFailure with the shaped error (see {@link shapeFailure}). */
  async fail(
    token: string,
    error: unknown,
    secrets: readonly string[] = [],
    log: Logger = this.log,
  ): Promise<Delivery> {
    const shaped = shapeFailure(error, secrets);
    return this.deliver('failure', () => this.api.sendFailure(token, shaped.error, shaped.cause), log);
  }

  /**
   * Whether an execution still waits for `token`: one heartbeat, before any work. A token the
   * service does not know (forged, or its execution gone) answers false; anything else (the
   * service unreachable) throws, so the message stays queued and comes back.
   */
  async confirmWaiting(token: string): Promise<boolean> {
    try {
      await this.api.sendHeartbeat(token);
      return true;
    } catch (error) {
      if (isGoneToken(error)) return false;
      throw error;
    }
  }

  /**
   * Sends a heartbeat every `heartbeatSeconds / 3` until the returned stop function is called.
   * When the service says the token is gone, calls `onGone` once (the caller aborts the task).
   */
  startHeartbeat(token: string, heartbeatSeconds: number, onGone: (reason: string) => void): () => void {
    const everyMs = Math.max(1000, Math.floor((heartbeatSeconds * 1000) / 3));
    let stopped = false;
    let inFlight = false;
    const timer = setInterval(async () => {
      if (stopped || inFlight) return;
      inFlight = true;
      try {
        await this.api.sendHeartbeat(token);
      } catch (error) {
        if (isGoneToken(error)) {
          stopped = true;
          clearInterval(timer);
          onGone(`the execution no longer waits for this task (${(error as Error).name})`);
        } else {
          this.log('warn', 'heartbeat failed', { error: (error as Error).name });
        }
      } finally {
        inFlight = false;
      }
    }, everyMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }

  private async deliver(what: string, call: () => Promise<void>, log: Logger): Promise<Delivery> {
    try {
      await retry(
        async (attempt) => {
          try {
            await call();
          } catch (error) {
            if (!isGoneToken(error) && attempt < ANSWER_ATTEMPTS) {
              log('warn', `sending task ${what} failed, retrying`, { error: (error as Error).name, attempt });
            }
            throw error;
          }
        },
        {
          attempts: ANSWER_ATTEMPTS,
          retryOn: (error) => !isGoneToken(error),
          delayMs: (attempt) => this.retryDelayMs * attempt,
        },
      );
      return 'sent';
    } catch (error) {
      if (!isGoneToken(error)) throw error;
      log('warn', `task ${what} not delivered: nobody waits for it`, { error: (error as Error).name });
      return 'gone';
    }
  }
}
