/**
 * Shared pieces of the state-machine step Lambdas: input validation, the task fragments built
 * from records, and the wrapper that turns a step into a Lambda handler. A step's errors reach
 * Step Functions with the typed error's name as errorType, so Retry/Catch can match on it.
 */

import { z } from 'zod';
import { TASK_VERSION } from '#core/contracts/tasks.ts';
import { ValidationError } from '#core/errors.ts';
import type { Datastore, Disk, Image, Vm } from '#core/model.ts';
import { log } from '../log.ts';

/** The part of every state input the steps read; the rest (`admit`, `host`...) passes through. */
export const StepInput = z.looseObject({ executionId: z.string().min(1) });

/** Wrap a step: validate its input with `schema`, log start and failure with the execution id. */
export function step<S extends z.ZodType, R>(
  name: string,
  schema: S,
  run: (input: z.output<S>) => Promise<R>,
) {
  return async (event: unknown): Promise<R> => {
    const parsed = schema.safeParse(event);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ValidationError(
        `${name} input: ${issue ? `${issue.path.join('.') || 'input'}: ${issue.message}` : 'invalid'}`,
      );
    }
    const executionId = (parsed.data as { executionId?: string }).executionId;
    try {
      const result = await run(parsed.data);
      log('info', `${name} done`, { executionId });
      return result;
    } catch (err) {
      log('warn', `${name} failed`, {
        executionId,
        error: err instanceof Error ? err.name : String(err),
        message: err instanceof Error ? err.message : undefined,
      });
      throw err;
    }
  };
}

/** The datastore as a task sees it: attributes and the secret reference, never secret values. */
/** The datastore as a task sees it; a job's image (or backup) names its job's repository. */
export function taskDatastore(ds: Datastore, image?: Pick<Image, 'jobId'> | null) {
  return {
    id: ds.id,
    driver: ds.driver,
    attributes: ds.attributes,
    secretRef: ds.secretRef ?? null,
    ...(image?.jobId !== undefined && { jobId: image.jobId }),
  };
}

/** The VM as a task sees it. */
export function taskVm(vm: Vm) {
  return { id: vm.id, domain: vm.domain, state: vm.state };
}

/** A disk as a backup task sees it, with the disk driver that handles its format. */
export function taskDisk(disk: Disk) {
  return {
    id: disk.id,
    target: disk.target,
    source: disk.source,
    format: disk.format,
    driver: disk.format === 'rbd' ? ('rbd' as const) : ('qcow2' as const),
  };
}

/** Header fields of every task the Admit steps build (taskId and token come from the ASL). */
export function taskHeader<K extends string>(kind: K, heartbeatSeconds: number) {
  return { v: TASK_VERSION, kind, heartbeatSeconds };
}

/** The error a step records when the state machine hands it `{ Error, Cause }`. */
export function describeFailure(error: { Error?: string; Cause?: string } | undefined): {
  name: string;
  message: string;
} {
  const name = error?.Error || 'Error';
  const cause = error?.Cause ?? '';
  // From a Lambda, Cause is the JSON `{ errorType, errorMessage }`; from the runner, plain text.
  try {
    const parsed = JSON.parse(cause) as { errorType?: unknown; errorMessage?: unknown };
    if (parsed && typeof parsed === 'object' && typeof parsed.errorMessage === 'string') {
      return {
        name: typeof parsed.errorType === 'string' ? parsed.errorType : name,
        message: parsed.errorMessage,
      };
    }
  } catch {
    // Not JSON: the runner's readable message.
  }
  return { name, message: cause || name };
}
