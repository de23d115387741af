/**
 * The Lambda functions of `functions/manifest.ts` as local mode names them, and the error an
 * invocation fails with. Running them is local/lambda-workers.ts's job (each function in worker
 * threads of its own, from its bundle).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** Calls a function by manifest id (or name, or ARN) with an event; resolves with its result. */
export type Invoker = (id: string, event: unknown) => Promise<unknown>;
