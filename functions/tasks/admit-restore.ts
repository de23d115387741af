/**
 * Restore step Admit: checks the image (READY) and the target host, and builds the restore task.
 * Restores take no VM lock: they read a backup and write new files. Idempotent (no writes beyond
 * the execution's phase).
 */

import { restoreChain } from '#core/chain.ts';
import { RestoreRequestBody } from '#core/contracts/api.ts';
import { CleanupTask, RestoreTask } from '#core/contracts/tasks.ts';
import { Conflict, ValidationError } from '#core/errors.ts';
import { Id } from '#core/model.ts';
import { limits } from '../env.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { images } from '../repo/images.ts';
import { StepInput, step, taskDatastore, taskHeader } from './common.ts';

/** Where restores go when the request names no folder. */
export const DEFAULT_RESTORE_ROOT = '/var/lib/lifeboat/restores';

export const AdmitRestoreInput = StepInput.extend({
  imageId: Id,
  // The API stored the validated request options plus the resolved host id.
  options: RestoreRequestBody.extend({ hostId: Id }).omit({ priority: true }),
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

  const disks = image.disks.filter((d) => options.diskId === undefined || d.id === options.diskId);
  if (disks.length === 0)
    throw new ValidationError(`diskId: image ${image.id} has no disk ${options.diskId}`);
  const name = options.name ?? `${image.name}-restore-${executionId}`;
  const chain = restoreChain(
    image,
    disks.map((d) => d.id),
    options.incrementId,
  );
  const { heartbeatSeconds } = limits();
  const task = RestoreTaskFields.parse({
    ...taskHeader('restore', heartbeatSeconds),
    imageId: image.id,
    vmId: image.vmId,
    backupId: chain.full.backupId,
    disks: chain.full.disks,
    datastore: taskDatastore(datastore),
    target: options.targetDir ?? `${DEFAULT_RESTORE_ROOT}/${name}`,
    name,
    // Template cleaning (NO_IP, NO_NIC, PCI, NUMA) belongs to core and is not there yet: the
    // template travels as captured; a single-disk restore has none.
    template: options.diskId === undefined ? image.template || null : null,
    increment: chain.incrementId,
    chain: chain.increments,
  });
  const cleanup = CleanupTaskFields.parse({
    ...taskHeader('cleanup', heartbeatSeconds),
    vm: null,
    imageId: image.id,
    datastore: taskDatastore(datastore),
  });
  await executions.update(executionId, { phase: 'running', hostId: host.id });
  return { hostId: host.id, imageId: image.id, queueUrl: host.queueUrl, task, cleanup };
});
