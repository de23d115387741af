/**
 * What a task handler gets: its abort signal, its own work folder, progress reporting, the
 * drivers and the resolver that opens the datastore secrets sealed to this host. Handlers are
 * plain async functions from a task to its result and throw typed errors; the executor
 * (`runner/executor.ts`) does journal, heartbeat and answer.
 */
import { join } from 'node:path';
import type { z } from 'zod';
import type { TaskDatastore } from '#core/contracts/tasks.ts';
import { checkTaskAttributes } from '#core/datastore-attributes.ts';
import { ValidationError } from '#core/errors.ts';
import type { DatastoreDriver, DatastoreTarget } from '#drivers/datastore/driver.ts';
import type { DiskDriver } from '#drivers/disk/driver.ts';
import type { Logger } from '../log.ts';
import type { Progress } from '../progress.ts';

/** Drivers by name; injected so tests can use fakes. */
export interface Drivers {
  /** The disk driver a task names (absent: the registry's default, file disks). */
  disk(name?: string): DiskDriver;
  /** Every disk driver (reconcile asks each; stored files are matched to the one that wrote them). */
  disks(): readonly DiskDriver[];
  datastore(name: string): DatastoreDriver;
}

/**
 * Opens the secret values a task's datastore carries sealed to this host
 * (`datastore.sealedSecrets`; see runner/sealed-secrets.ts). Called only when there are some.
 */
export type SecretResolver = (datastore: z.infer<typeof TaskDatastore>) => Promise<Record<string, string>>;

/** Everything a handler may use. */
export interface TaskContext {
  signal: AbortSignal;
  /** This task's work folder, `<state>/work/<taskId sanitized>` (not created; removed after). */
  workDir: string;
  /** The runner's state folder (journal, work folders). */
  stateDir: string;
  /**
   * The host's restore roots (`LIFEBOAT_RESTORE_ROOTS`, absolute): where a confined restore or
   * download may write, a relative target going under the first (see `runner/confine.ts`).
   */
  restoreRoots: readonly string[];
  /**
   * The Ceph pools this host lets a restore write new images into (`LIFEBOAT_RESTORE_POOLS`);
   * absent or empty: none.
   */
  restorePools?: readonly string[];
  progress: Progress;
  drivers: Drivers;
  /**
   * The libvirt connection of this runner (`LIFEBOAT_LIBVIRT_URI`), for what a handler asks
   * libvirt itself (define, start, undefine a restored domain); absent: `qemu:///system`.
   */
  libvirtUri?: string;
  /** Datastore target with its secrets resolved; the values are remembered for masking. */
  target(datastore: z.infer<typeof TaskDatastore>): Promise<DatastoreTarget>;
  /** Work folder of another task of this runner (cleanup of a failed one). */
  workDirOf(taskId: string): string;
  /** Aborts a task of this runner still running and waits for it to end (cleanup). */
  abortRunning(taskId: string): Promise<boolean>;
  log: Logger;
}

/** A task id as a folder name: readable, unique, no `/` or `..`. */
export function sanitizeTaskId(taskId: string): string {
  const readable = taskId
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 120);
  // Two task ids that differ only in replaced characters still get distinct folders.
  let hash = 0;
  for (const ch of taskId) hash = (Math.imul(hash, 31) + (ch.codePointAt(0) ?? 0)) >>> 0;
  return `${readable}-${hash.toString(16)}`;
}

/** The folder of the tasks' work folders, `<state>/work`. */
export function workRoot(stateDir: string): string {
  return join(stateDir, 'work');
}

/**
 * The runner's temporary folder, `<state>/tmp` (0700): its main points TMPDIR here, so the
 * drivers' password files and named pipes never land in the host's shared /tmp, and what a
 * killed runner left is removed at the next start.
 */
export function scratchRoot(stateDir: string): string {
  return join(stateDir, 'tmp');
}

/** Work folder of `taskId` under the state folder. */
export function workDirFor(stateDir: string, taskId: string): string {
  return join(workRoot(stateDir), sanitizeTaskId(taskId));
}

/**
 * Re-checks a task's datastore attributes with the API's rules (core/datastore-attributes.ts):
 * the task message is untrusted input to a root process, and these values end up in ssh, sftp,
 * rsync and restic arguments and remote paths. Throws ValidationError naming the datastore.
 */
export function revalidateDatastore(datastore: z.infer<typeof TaskDatastore>): void {
  try {
    checkTaskAttributes(datastore.driver, datastore.attributes);
  } catch (error) {
    throw new ValidationError(`datastore ${datastore.id}: ${(error as Error).message}`, { cause: error });
  }
}

/** Resolves the target of `datastore`, collecting secret values into `secrets` for masking. */
export async function resolveTarget(
  datastore: z.infer<typeof TaskDatastore>,
  resolve: SecretResolver,
  secrets: string[],
): Promise<DatastoreTarget> {
  // Every task reaches its datastore through here: refuse bad attributes before any process runs.
  revalidateDatastore(datastore);
  let values: Record<string, string> = {};
  if (datastore.sealedSecrets) {
    values = await resolve(datastore);
    secrets.push(...Object.values(values));
  }
  return {
    id: datastore.id,
    attributes: datastore.attributes,
    secrets: values,
    ...(datastore.jobId !== undefined && { jobId: datastore.jobId }),
  };
}
