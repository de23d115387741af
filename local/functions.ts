/**
 * Calling the Lambda handlers of `functions/manifest.ts` in process, as Lambda would: the entry
 * module imported once, its exported handler called with the event and a minimal context. A
 * thrown error becomes a {@link FunctionError} carrying Lambda's `{ errorType, errorMessage }`.
 */
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FUNCTIONS, type FunctionSpec } from '#functions/manifest.ts';

/** The project root (where `functions/` lives). */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Local name of a function: `lifeboat-<Id>` (the dispatcher is `lifeboat-Dispatcher`). */
export function localFunctionName(spec: Pick<FunctionSpec, 'id'>): string {
  return `lifeboat-${spec.id}`;
}

/**
 * The manifest entry a function name, local name or Lambda ARN (`...:function:NAME[:qualifier]`)
 * designates, or undefined.
 */
export function findFunction(nameOrArn: string): FunctionSpec | undefined {
  const match = /^arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)(?::[^:]+)?$/.exec(nameOrArn);
  const name = match?.[1] ?? nameOrArn;
  return FUNCTIONS.find((f) => name === localFunctionName(f) || name === f.id);
}

/** A handler failed: what Lambda reports as the function error. */
export class FunctionError extends Error {
  constructor(
    readonly errorType: string,
    readonly errorMessage: string,
  ) {
    super(errorMessage);
    this.name = errorType;
  }

  /** Lambda's error payload. */
  toPayload(): { errorType: string; errorMessage: string } {
    return { errorType: this.errorType, errorMessage: this.errorMessage };
  }
}

/** Calls a function by manifest id with an event; resolves with its result. */
export type Invoker = (id: string, event: unknown) => Promise<unknown>;

type Handler = (event: unknown, context: unknown) => Promise<unknown> | unknown;

const loaded = new Map<string, Promise<Handler>>();

async function loadHandler(spec: FunctionSpec): Promise<Handler> {
  let handler = loaded.get(spec.id);
  if (!handler) {
    handler = import(pathToFileURL(join(PROJECT_ROOT, spec.entry)).href).then(
      (mod: Record<string, unknown>) => {
        const fn = mod[spec.handler];
        if (typeof fn !== 'function')
          throw new Error(`${spec.entry} does not export a function ${spec.handler}`);
        return fn as Handler;
      },
    );
    loaded.set(spec.id, handler);
    // A failed import is retried on the next call (the module may be fixed meanwhile).
    handler.catch(() => loaded.delete(spec.id));
  }
  return handler;
}

/** A minimal Lambda context: what middy and our handlers read. */
function lambdaContext(spec: FunctionSpec, region: string) {
  const deadline = Date.now() + spec.timeoutSeconds * 1000;
  const name = localFunctionName(spec);
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${name}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * Invoke the function `id` in process. The event is passed through a JSON round trip, as Lambda
 * serializes it; so is the result. Throws {@link FunctionError} when the handler throws, or
 * when the function is unknown (`ResourceNotFoundException`).
 */
export async function invokeLocal(id: string, event: unknown): Promise<unknown> {
  const spec = findFunction(id);
  if (!spec) throw new FunctionError('ResourceNotFoundException', `Function not found: ${id}`);
  let result: unknown;
  try {
    const handler = await loadHandler(spec);
    const payload = event === undefined ? {} : JSON.parse(JSON.stringify(event));
    result = await handler(payload, lambdaContext(spec, process.env.AWS_REGION || 'us-east-1'));
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    throw new FunctionError(error.name || 'Error', error.message);
  }
  return result === undefined ? null : JSON.parse(JSON.stringify(result));
}
