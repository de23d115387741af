/**
 * Restore step Admit: checks the image (READY) and the target host, cleans the template
 * (core/template.ts) and builds the restore task. A restore into new files takes no VM lock; an
 * in-place restore takes the VM's lock (no backup may read the disks it replaces) and needs the
 * VM POWEROFF on its host. Idempotent (the lock is re-taken by the same execution).
 */

import { z } from 'zod';
import { restoreChain } from '#core/chain.ts';
import { RestoreRequestBody } from '#core/contracts/api.ts';
import { CleanupTask, RestoreTask } from '#core/contracts/tasks.ts';
import { Conflict, ValidationError } from '#core/errors.ts';
import { Id, type Image } from '#core/model.ts';
import { assertPoolAllowed } from '#core/restore-pools.ts';
import { cleanTemplate } from '#core/template.ts';
import { limits } from '../env.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { lockCondition, vms } from '../repo/vms.ts';
import { StepInput, step, taskDatastore, taskHeader } from './common.ts';

export const AdmitRestoreInput = StepInput.extend({
  imageId: Id,
  // The API stored the validated request options plus the resolved host id and whether the
  // restore roots bound the folder (false only when an admin asked; absent: true).
  options: RestoreRequestBody.extend({ hostId: Id, confine: z.boolean().default(true) }).omit({
    priority: true,
  }),
});

const RestoreTaskFields = RestoreTask.omit({ taskId: true, token: true });
const CleanupTaskFields = CleanupTask.omit({ taskId: true, token: true, failedTaskId: true });

export const handler = step('AdmitRestore', AdmitRestoreInput, async (input) => {
  const { executionId, options } = input;
  await executions.update(executionId, { state: 'RUNNING', phase: 'admitting' });
  const image = await images.get(input.imageId);
  if (image.state !== 'READY')
    throw new Conflict(`Image ${image.id} is ${image.state}: only READY images can be restored`);
  if (!image.source) throw new Conflict(`Image ${image.id} has no backup to restore`);
  const datastore = await datastores.get(image.datastoreId);
  const host = await hosts.get(options.hostId);
  if (!host.queueUrl) throw new Conflict(`Host ${host.id} has no task queue`);
  // Again here: RESTORE_POOLS may have changed since the request was accepted.
  assertPoolAllowed(options.pool, host);
  // Sealed before the in-place lock: a host that cannot open the secrets leaves nothing to undo.
  const taskDs = await taskDatastore(datastore, host, image);

  const disks = image.disks.filter((d) => options.diskId === undefined || d.id === options.diskId);
  if (disks.length === 0)
    throw new ValidationError(`diskId: disk ${options.diskId} is not part of the backup`);
  const name = options.name ?? `${image.vmId}-${image.id}`;
  const chain = restoreChain(
    image,
    disks.map((d) => d.id),
    options.incrementId,
  );
  if (options.define && !image.template)
    throw new ValidationError(
      `image ${image.id} holds no VM template: restore its disks with diskId or targetDir`,
    );
  const inPlace = options.inPlace
    ? await lockForInPlace(image, executionId, host.id, chain.full.disks, options.start === true)
    : null;
  const { heartbeatSeconds } = limits();
  const task = RestoreTaskFields.parse({
    ...taskHeader('restore', heartbeatSeconds, host.id),
    imageId: image.id,
    vmId: image.vmId,
    backupId: chain.full.backupId,
    disks: chain.full.disks,
    datastore: taskDs,
    // Relative: the runner puts it under the host's first restore root.
    target: options.targetDir ?? name,
    confine: options.confine,
    name,
    // A single disk, the VM's own disks, or images of a pool need no template; a new VM gets a cleaned one.
    template:
      options.diskId === undefined && !inPlace && options.pool === undefined && image.template
        ? cleanTemplate(image.template, { name, noNic: options.noNic, noIp: options.noIp })
        : null,
    increment: chain.incrementId,
    chain: chain.increments,
    define: options.define
      ? { start: options.start === true, emulatorCpus: host.emulatorCpus ?? null }
      : null,
    inPlace,
    pool: options.pool ?? null,
  });
  const cleanup = CleanupTaskFields.parse({
    ...taskHeader('cleanup', heartbeatSeconds, host.id),
    vm: null,
    imageId: image.id,
    datastore: taskDs,
  });
  await executions.update(executionId, { phase: 'running', hostId: host.id });
  return { hostId: host.id, imageId: image.id, queueUrl: host.queueUrl, task, cleanup };
});

/**
 * Takes the VM's lock for an in-place restore and names the files to overwrite: the VM must be
 * POWEROFF on the restoring host, unlocked (or locked by this execution: a retry), and have each
 * restored disk (a file, or an rbd image: the runner's disk driver for it writes it over).
 */
async function lockForInPlace(
  image: Image,
  executionId: string,
  hostId: number,
  restored: readonly { id: number }[],
  start: boolean,
) {
  const vm = await vms.get(image.vmId);
  if (vm.hostId !== hostId) throw new Conflict(`VM ${vm.id} is on host ${vm.hostId}, not host ${hostId}`);
  if (vm.state !== 'POWEROFF')
    throw new Conflict(`VM ${vm.id} is ${vm.state}: an in-place restore needs it POWEROFF`);
  const disks = restored.map(({ id }) => {
    const disk = vm.disks.find((d) => d.id === id);
    if (!disk) throw new ValidationError(`VM ${vm.id} has no disk ${id} to restore in place`);
    return { id, source: disk.source, format: disk.format };
  });
  try {
    // Only while still on that host: an inventory may move it between the read and the lock.
    await vms.update(vm.id, { lock: executionId }, { condition: lockCondition(executionId, hostId) });
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    const now = await vms.get(vm.id);
    if (now.hostId !== hostId) throw new Conflict(`VM ${vm.id} is on host ${now.hostId}, not host ${hostId}`);
    throw new Conflict(`VM ${vm.id} is locked by execution ${now.lock}`);
  }
  return { domain: vm.domain, disks, start };
}
