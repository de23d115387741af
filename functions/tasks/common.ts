/**
 * Shared pieces of the state-machine step Lambdas: input validation, the task fragments built
 * from records, and the step's Lambda handler (the shared middleware of ../middleware.ts). A step's errors reach
 * Step Functions with the typed error's name as errorType, so Retry/Catch can match on it.
 */

import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { diskDriverFor, TASK_VERSION } from '#core/contracts/tasks.ts';
import { Conflict } from '#core/errors.ts';
import type { Datastore, Disk, Host, Image, Vm } from '#core/model.ts';
import { sealContext, sealSecrets } from '#platform/sealed-secrets.ts';
import { lambda } from '../middleware.ts';
import { secretStore } from '../secrets.ts';

/** The part of every state input the steps read; the rest (`admit`, `host`...) passes through. */
export const StepInput = z.looseObject({ executionId: z.string().min(1) });

/**
 * A Step Functions task's Lambda: {@link lambda}, the middleware every Lambda shares (input
 * validated with `schema`, start and failure logged with the execution id, DynamoDB throttling
 * and transaction conflicts leaving as `Throttled`, the name the state machines retry).
 */
export function step<S extends z.ZodType, R>(
  name: string,
  schema: S,
  run: (input: z.output<S>) => Promise<R>,
): (event: unknown, context?: Context) => Promise<R> {
  return lambda(name, schema, (input) => run(input));
}

/**
 * The datastore as the task of `host` sees it: its attributes, and its secret values (read from
 * the secret store here) sealed to the host's registered key, bound to `ds/<id>`, so the task,
 * and with it the execution history, carries only ciphertext that this host alone can open.
 * A job's image (or backup) names its job's repository. A datastore with secrets and a host that
 * registered no key is refused: the task could not be opened on the host.
 */
export async function taskDatastore(
  ds: Datastore,
  host: Pick<Host, 'id' | 'name' | 'publicKey'>,
  image?: Pick<Image, 'jobId'> | null,
) {
  let sealedSecrets: string | null = null;
  if (ds.secretRef) {
    if (!host.publicKey) {
      throw new Conflict(
        `Host ${host.id} has no registered key: enroll its runner (lifeboat host enroll ${host.name})`,
      );
    }
    const values = await secretStore().get(ds.secretRef);
    sealedSecrets = sealSecrets(values, host.publicKey, sealContext(ds.id));
  }
  return {
    id: ds.id,
    driver: ds.driver,
    attributes: ds.attributes,
    sealedSecrets,
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
    driver: diskDriverFor(disk.format),
  };
}

/**
 * Header fields of every task the Admit steps build (taskId and token come from the ASL), with
 * the id of the host whose queue it goes to: that host's runner alone runs it.
 */
export function taskHeader<K extends string>(kind: K, heartbeatSeconds: number, hostId: number) {
  return { v: TASK_VERSION, kind, heartbeatSeconds, hostId };
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
