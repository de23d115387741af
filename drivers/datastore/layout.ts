/**
 * Names shared by every driver: where a VM's backups live and which names a backup may hold.
 * These names are on the backup server for anyone restoring without Lifeboat (DESIGN.md,
 * "Backups stay readable without Lifeboat"), so they never change.
 */

import { dirname } from 'node:path';
import { DEFAULT_BASE_PATH } from '#core/datastore-attributes.ts';
import { ValidationError } from '#core/errors.ts';
import type { DatastoreTarget } from './driver.ts';

/** File name of the VM template inside every backup. */
export const TEMPLATE_NAME = 'vm.xml';

/** Folder (or repository) of one VM's backups: `<BASE_PATH>/<vmid>`. */
export function vmPath(target: DatastoreTarget, vmId: number): string {
  if (!Number.isSafeInteger(vmId) || vmId < 0)
    throw new ValidationError(`vmId must be an integer (got ${vmId})`);
  const base = target.attributes.BASE_PATH || DEFAULT_BASE_PATH;
  return `${base.replace(/\/+$/, '')}/${vmId}`;
}

/** The datastore's folder, `<BASE_PATH>`, holding every VM's and job's folder. */
export function basePath(target: DatastoreTarget): string {
  return dirname(vmPath(target, 0));
}

/**
 * A restic repository: the VM's own (`<BASE_PATH>/<vmid>`), or for a backup job's backups the
 * job's, shared by its VMs (`<BASE_PATH>/job-<jobid>`; snapshots still carry `vm:<id>` tags).
 */
export function repositoryPath(target: DatastoreTarget, vmId: number): string {
  if (target.jobId === undefined) return vmPath(target, vmId);
  if (!Number.isSafeInteger(target.jobId) || target.jobId < 0)
    throw new ValidationError(`jobId must be an integer (got ${target.jobId})`);
  return `${basePath(target)}/job-${target.jobId}`;
}

/**
 * Whether a folder directly under BASE_PATH is one of the datastore's repositories: a VM's
 * (`<vmid>`) or a backup job's (`job-<jobid>`). Anything else there is not the datastore's.
 */
export function isRepositoryFolder(name: string): boolean {
  return /^(?:\d+|job-\d+)$/.test(name);
}

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * Whether `name` is a plain file name a backup may hold (letters, digits and ._-, not starting
 * with . or -): no folder, no `..`, nothing a shell or an option parser reads specially. Names
 * read back from a backup server are checked with it before they reach a path or a command.
 */
export function isPlainFileName(name: string): boolean {
  return SAFE_NAME.test(name);
}

/**
 * Checks the file names of a backup: plain names (they become remote paths and restic tags),
 * unique, and none of the names the drivers keep for themselves.
 */
export function checkFileNames(names: readonly string[], reserved: readonly string[] = []): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (!isPlainFileName(name)) {
      throw new ValidationError(
        `file name "${name}" must be letters, digits and ._- (not starting with . or -)`,
      );
    }
    if (name === TEMPLATE_NAME || reserved.includes(name)) {
      throw new ValidationError(`file name "${name}" is reserved for the driver`);
    }
    if (seen.has(name)) throw new ValidationError(`file name "${name}" appears twice`);
    seen.add(name);
  }
}

/** Backup ids come back from the control plane: only what a driver could have made is accepted. */
export function checkBackupId(backupId: string): void {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(backupId)) {
    throw new ValidationError(`backup id "${backupId}" is not one a datastore driver makes`);
  }
}
