/**
 * What the restore wizard asks, turned into the body of `POST /images/{id}/restore` (the
 * RestoreRequestBody of the OpenAPI document), with the rules across fields the API checks
 * (core/contracts/api.ts `checkRestoreOptions`) said before the request.
 */
import type { RestoreRequestBody } from './api.ts';

/** The wizard's answers. */
export interface RestoreChoices {
  /** The restore point: an increment id, or undefined for the chain's last point. */
  incrementId?: number;
  /** One disk only (a disk image, no VM), or undefined for every disk. */
  diskId?: number;
  target: 'new' | 'inPlace';
  name: string;
  /** Where the disks go: the VM's host by default, or a named host; a folder on it. */
  hostId?: number;
  targetDir: string;
  noIp: boolean;
  noNic: boolean;
  start: boolean;
  /** In place: the VM's name typed again. */
  confirmation: string;
}

/** The request body of `choices`. */
export function restoreBody(choices: RestoreChoices): RestoreRequestBody {
  const body: RestoreRequestBody = {};
  if (choices.incrementId !== undefined) body.incrementId = choices.incrementId;
  if (choices.diskId !== undefined) body.diskId = choices.diskId;
  if (choices.target === 'inPlace') {
    body.inPlace = true;
    body.confirmOverwrite = true;
    return body;
  }
  if (choices.name.trim()) body.name = choices.name.trim();
  if (choices.hostId !== undefined) body.hostId = choices.hostId;
  if (choices.targetDir.trim()) body.targetDir = choices.targetDir.trim();
  if (choices.noIp) body.noIp = true;
  if (choices.noNic) body.noNic = true;
  if (choices.start) body.start = true;
  return body;
}

/** Why `choices` cannot be sent, field by field (empty: it can). */
export function restoreProblems(
  choices: RestoreChoices,
  vmName: string,
): Partial<Record<keyof RestoreChoices, string>> {
  const problems: Partial<Record<keyof RestoreChoices, string>> = {};
  if (choices.target === 'inPlace') {
    if (choices.confirmation !== vmName) problems.confirmation = `Type ${vmName} to confirm the overwrite`;
    return problems;
  }
  if (choices.name.trim() && !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/.test(choices.name.trim())) {
    problems.name = 'Letters, digits and . _ + - (starting with a letter or digit), at most 128';
  }
  if (choices.targetDir.trim() && !/^[A-Za-z0-9._+@/-]{1,4096}$/.test(choices.targetDir.trim())) {
    problems.targetDir = 'A plain path: letters, digits and . _ + @ / -';
  }
  if (choices.start && choices.diskId !== undefined) {
    problems.start = 'A single disk restores a disk image only: nothing to start';
  }
  return problems;
}
