/**
 * What each Task state's Resource does in local mode: Lambda functions run in process, SQS
 * messages go to the emulator, `.waitForTaskToken` waits for SendTask* on a fresh token.
 */
import { FunctionError, type Invoker } from '../functions.ts';
import { TaskFailed } from './errors.ts';
import { replaceString, SQS_WAIT_FOR_TOKEN, type TaskStateInfo } from './machine.ts';
import type { TaskTokens } from './task-tokens.ts';

/** Placeholder for `$$.Task.Token` in the context object (the interpreter has no tokens). */
export const TOKEN_PLACEHOLDER = '__LIFEBOAT_LOCAL_TASK_TOKEN__';

/** Sends one SQS message; resolves with its id. */
export type MessageSender = (message: {
  QueueUrl: string;
  MessageBody: string;
  [field: string]: unknown;
}) => Promise<{ MessageId?: string; MD5OfMessageBody?: string }>;

/** What task resources need from the outside. */
export interface TaskServices {
  invoke: Invoker;
  sendMessage: MessageSender;
  tokens: TaskTokens;
}

function sqsMessage(input: unknown): { QueueUrl: string; MessageBody: string; [field: string]: unknown } {
  const params = (input ?? {}) as Record<string, unknown>;
  if (typeof params.QueueUrl !== 'string') throw new TaskFailed('States.Runtime', 'QueueUrl is not a string');
  const body = params.MessageBody;
  // Step Functions serializes a JSON MessageBody; a string goes as is.
  return {
    ...params,
    QueueUrl: params.QueueUrl,
    MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
  };
}

async function invokeAsLambda(
  services: TaskServices,
  functionName: string,
  payload: unknown,
): Promise<unknown> {
  try {
    return await services.invoke(functionName, payload);
  } catch (err) {
    if (err instanceof FunctionError) {
      // What Step Functions reports for a Lambda that threw: Error = errorType, Cause = the JSON.
      throw new TaskFailed(err.errorType, JSON.stringify(err.toPayload()));
    }
    throw err;
  }
}

/** Run one Task state of execution `executionArn` on its (already processed) input. */
export async function runTaskResource(
  services: TaskServices,
  task: TaskStateInfo & { stateName: string; executionArn: string },
  input: unknown,
): Promise<unknown> {
  const { resource } = task;
  if (resource === SQS_WAIT_FOR_TOKEN) {
    const { token, result } = services.tokens.create({
      executionArn: task.executionArn,
      stateName: task.stateName,
      heartbeatSeconds: task.heartbeatSeconds,
      timeoutSeconds: task.timeoutSeconds,
    });
    try {
      await services.sendMessage(sqsMessage(replaceString(input, TOKEN_PLACEHOLDER, token)));
    } catch (err) {
      services.tokens.cancel(token);
      throw new TaskFailed('SQS.SdkClientException', (err as Error).message);
    }
    return result;
  }
  if (resource === 'arn:aws:states:::sqs:sendMessage') {
    const sent = await services.sendMessage(sqsMessage(input));
    return { MessageId: sent.MessageId, MD5OfMessageBody: sent.MD5OfMessageBody };
  }
  if (resource === 'arn:aws:states:::lambda:invoke') {
    const params = (input ?? {}) as { FunctionName?: string; Payload?: unknown };
    if (typeof params.FunctionName !== 'string') {
      throw new TaskFailed('States.Runtime', 'FunctionName is not a string');
    }
    const payload = await invokeAsLambda(services, params.FunctionName, params.Payload);
    return { ExecutedVersion: '$LATEST', Payload: payload, StatusCode: 200 };
  }
  if (/^arn:[^:]+:lambda:/.test(resource)) return invokeAsLambda(services, resource, input);
  throw new TaskFailed('States.Runtime', `resource ${resource} is not supported in local mode`);
}
