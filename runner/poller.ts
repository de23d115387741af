/**
 * Long-polls the host's SQS queue and hands each task to the executor. A message is deleted
 * once the executor has made its decision durable (journalled start, or the answer sent again);
 * the journal, not SQS, then carries the task. A message that is not a valid task is logged,
 * failed with `InvalidTask` when it carries a token (so its execution ends at once rather than
 * after its heartbeat timeout), and deleted. Only as many messages are taken as there are free
 * slots for disk-heavy tasks.
 */
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { TASK_VERSION, Task } from '#core/contracts/tasks.ts';
import { sqsClient } from '#platform/aws.ts';
import { InvalidTask } from './errors.ts';
import type { Executor } from './executor.ts';
import type { Logger } from './log.ts';
import { sleep } from './register.ts';
import type { Reporter } from './reporter.ts';

export interface QueueMessage {
  id: string;
  body: string;
  receiptHandle: string;
}

/** The two SQS calls the runner makes; a fake in unit tests. */
export interface QueueApi {
  receive(max: number, waitSeconds: number, signal: AbortSignal): Promise<QueueMessage[]>;
  delete(receiptHandle: string): Promise<void>;
}

/** SQS (AWS, or fauxqs through AWS_ENDPOINT_URL_SQS) for the queue at `queueUrl`. */
export function sqsQueueApi(queueUrl: string, client: SQSClient = sqsClient()): QueueApi {
  return {
    async receive(max, waitSeconds, signal) {
      const out = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, Math.max(1, max)),
          WaitTimeSeconds: waitSeconds,
        }),
        { abortSignal: signal },
      );
      return (out.Messages ?? []).map((m) => ({
        id: m.MessageId ?? '',
        body: m.Body ?? '',
        receiptHandle: m.ReceiptHandle ?? '',
      }));
    },
    async delete(receiptHandle) {
      await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }));
    },
  };
}

/** A parsed message: the task, or why it is not one (with its token and id when readable). */
export type ParsedMessage =
  | { ok: true; task: Task }
  | { ok: false; error: InvalidTask; token?: string; taskId?: string };

/** Validates a message body against the {@link Task} union of this protocol version. */
export function parseTaskMessage(body: string): ParsedMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { ok: false, error: new InvalidTask('the task message is not JSON') };
  }
  const fields = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const token = typeof fields.token === 'string' && fields.token ? fields.token : undefined;
  const taskId = typeof fields.taskId === 'string' ? fields.taskId : undefined;
  const known = { ...(token ? { token } : {}), ...(taskId ? { taskId } : {}) };
  if (fields.v !== TASK_VERSION) {
    return {
      ok: false,
      error: new InvalidTask(
        `task version ${JSON.stringify(fields.v)} is not supported (this runner speaks ${TASK_VERSION})`,
      ),
      ...known,
    };
  }
  const parsed = Task.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'kind';
    return {
      ok: false,
      error: new InvalidTask(`invalid task message: ${where}: ${issue?.message}`),
      ...known,
    };
  }
  return { ok: true, task: parsed.data };
}

export interface PollerDeps {
  queue: QueueApi;
  executor: Executor;
  reporter: Reporter;
  log: Logger;
}

/** Handles one message: parse, hand over (or fail) and delete. Never throws. */
export async function handleMessage(message: QueueMessage, deps: PollerDeps): Promise<void> {
  const { queue, executor, reporter, log } = deps;
  const parsed = parseTaskMessage(message.body);
  if (!parsed.ok) {
    // The body holds a token: log only what identifies the message and what is wrong.
    log('error', 'invalid task message', {
      messageId: message.id,
      taskId: parsed.taskId,
      error: parsed.error.message,
    });
    if (parsed.token) await reporter.fail(parsed.token, parsed.error, [], log).catch(() => {});
  } else {
    try {
      await executor.accept(parsed.task);
    } catch (error) {
      // Not durable (journal write failed): keep the message, SQS delivers it again.
      log('error', 'task not accepted, left on the queue', {
        taskId: parsed.task.taskId,
        error: String(error),
      });
      return;
    }
  }
  await queue.delete(message.receiptHandle).catch((error: unknown) => {
    log('warn', 'queue message not deleted', { messageId: message.id, error: (error as Error).name });
  });
}

/**
 * Polls until `signal` aborts: receives up to the number of free heavy-task slots, waits
 * `waitSeconds` per long poll, backs off 5 s after a failed receive.
 */
export async function pollLoop(
  deps: PollerDeps & { maxHeavy: number; waitSeconds: number; signal: AbortSignal },
): Promise<void> {
  const { queue, executor, log, signal } = deps;
  while (!signal.aborted) {
    const free = deps.maxHeavy - executor.heavyCount();
    if (free <= 0) {
      await sleep(500, signal);
      continue;
    }
    let messages: QueueMessage[];
    try {
      messages = await queue.receive(free, deps.waitSeconds, signal);
    } catch (error) {
      if (signal.aborted) break;
      log('warn', 'receiving from the task queue failed', { error: (error as Error).name });
      await sleep(5000, signal);
      continue;
    }
    for (const message of messages) await handleMessage(message, deps);
  }
}
