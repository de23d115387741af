/**
 * One Lambda execution environment, as a worker thread (local/lambda-workers.ts starts it with
 * the function's own process.env): imports the function's module once (its cold start), then
 * runs one invocation at a time, each with a Lambda-like context. Events and results cross as
 * JSON text, as Lambda serializes them. Node built-ins only: this file loads in any thread.
 */
import { setSourceMapsEnabled } from 'node:process';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

/** What the pool passes to the worker at start. */
export interface WorkerInit {
  /** Module to import (the bundle's index.mjs, or the TypeScript source with LIFEBOAT_LOCAL_SOURCES). */
  file: string;
  /** Exported handler name. */
  handler: string;
  functionName: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
}

/** One invocation, main thread to worker. */
export interface InvokeMessage {
  id: number;
  /** The event as JSON text. */
  event: string;
  requestId: string;
  /** Epoch milliseconds at which the invocation times out. */
  deadline: number;
}

/** The answer, worker to main thread. */
export type ResultMessage =
  | { id: number; ok: true; result: string }
  | { id: number; ok: false; errorType: string; errorMessage: string; init?: boolean };

/** Worker to main thread, once, when its init (the module's import) is over, failed or not. */
export interface InitDoneMessage {
  initDone: true;
}

type Handler = (event: unknown, context: unknown) => unknown;

const init = workerData as WorkerInit;
// The template's NODE_OPTIONS (--enable-source-maps) is not read by a worker: apply it here.
if (process.env.NODE_OPTIONS?.includes('--enable-source-maps')) setSourceMapsEnabled(true);

let loaded: Promise<Handler> | undefined;
function load(): Promise<Handler> {
  loaded ??= import(pathToFileURL(init.file).href).then((mod: Record<string, unknown>) => {
    const fn = mod[init.handler];
    if (typeof fn !== 'function') throw new Error(`${init.file} does not export a function ${init.handler}`);
    return fn as Handler;
  });
  return loaded;
}
// Lambda's init phase: the module loads as the environment starts, not at its first event, so
// an environment started ahead (LambdaWorkers.prewarm) answers its first event warm, and an
// invocation's timeout runs from the end of init, as Lambda's does. A failed load is answered
// to every invocation (below).
const initDone = () => parentPort?.postMessage({ initDone: true } satisfies InitDoneMessage);
load().then(initDone, initDone);

function context(msg: InvokeMessage) {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: init.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: init.invokedFunctionArn,
    memoryLimitInMB: init.memoryLimitInMB,
    awsRequestId: msg.requestId,
    logGroupName: `/aws/lambda/${init.functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, msg.deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

const describe = (err: unknown) => {
  const error = err instanceof Error ? err : new Error(String(err));
  return { errorType: error.name || 'Error', errorMessage: error.message };
};

parentPort?.on('message', async (msg: InvokeMessage) => {
  let handler: Handler;
  try {
    handler = await load();
  } catch (err) {
    parentPort?.postMessage({ id: msg.id, ok: false, init: true, ...describe(err) } satisfies ResultMessage);
    return;
  }
  let answer: ResultMessage;
  try {
    const result = await handler(JSON.parse(msg.event), context(msg));
    answer = { id: msg.id, ok: true, result: JSON.stringify(result === undefined ? null : result) };
  } catch (err) {
    answer = { id: msg.id, ok: false, ...describe(err) };
  }
  parentPort?.postMessage(answer);
});
