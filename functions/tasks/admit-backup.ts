/**
 * Backup step Admit: checks the VM and datastore, decides FULL or INCREMENT and the disks,
 * takes the VM's lock, creates (or, for an increment, re-locks) the image, and builds the host
 * task. Idempotent: a retry finds its lock, its image id on the execution, and rebuilds the same
 * task.
 */

import { z } from 'zod';
import { effectiveConfig, setRuntime, underDefaults, withDefaults } from '#core/backup-config.ts';
import { assertBackupableState, flattening, flatteningMessage, lockedMessage } from '#core/backup-rules.ts';
import { chainStateOf, decideChain, selectDisks } from '#core/chain.ts';
import { BackupTask, CleanupTask, type TaskIncrement } from '#core/contracts/tasks.ts';
import { Conflict } from '#core/errors.ts';
import { BackupConfigRecord, Id, type Image, type Vm } from '#core/model.ts';
import { limits } from '../env.ts';
import { allocateId } from '../repo/counters.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { lockCondition, vms } from '../repo/vms.ts';
import { StepInput, step, taskDatastore, taskDisk, taskHeader, taskVm } from './common.ts';

export const AdmitBackupInput = StepInput.extend({
  vmId: Id,
  datastoreId: Id,
  reset: z.boolean().default(false),
  /** A backup job's backup: its id, and its BACKUP_CONFIG defaults (and RESET) at queueing. */
  jobId: Id.optional(),
  jobConfig: BackupConfigRecord.optional(),
});

/** The task fields the ASL copies into the message (TASK_FIELDS.backup / .cleanup). */
const BackupTaskFields = BackupTask.omit({ taskId: true, token: true });
const CleanupTaskFields = CleanupTask.omit({ taskId: true, token: true, failedTaskId: true });

/** Take the VM's backup lock for this execution (or find it already ours). */
async function lockVm(vm: Vm, executionId: string, datastoreId: number): Promise<Vm> {
  try {
    return await vms.update(
      vm.id,
      { lock: executionId, 'backups.BACKUP_CONFIG.LAST_DATASTORE_ID': String(datastoreId) },
      // Only on the host the task goes to: an inventory may have moved the VM since it was read.
      { condition: lockCondition(executionId, vm.hostId) },
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    const now = await vms.find(vm.id);
    if (now && now.hostId !== vm.hostId)
      throw new Conflict(`VM ${vm.id} moved from host ${vm.hostId} to host ${now.hostId}: back it up again`);
    throw new Conflict(lockedMessage({ id: vm.id, lock: now?.lock ?? vm.lock }));
  }
}

/**
 * Record the execution's image id (allocated once: a retry finds the one already recorded) with
 * everything else Admit tells about the execution, in one conditional write: RUNNING, the host,
 * the image and the task's parameters. `fields` gets the image id it ends up with.
 */
async function recordAdmitted(
  executionId: string,
  chainImageId: number | null,
  fields: (imageId: number) => Record<string, unknown>,
): Promise<number> {
  const write = (imageId: number, condition: boolean) =>
    executions.update(
      executionId,
      { state: 'RUNNING', phase: 'running', imageId, ...fields(imageId) },
      condition
        ? {
            condition: {
              expression: 'attribute_not_exists(#i) OR #i = :i',
              names: { '#i': 'imageId' },
              values: { ':i': imageId },
            },
          }
        : {},
    );
  const candidate = chainImageId ?? (await allocateId('image'));
  try {
    await write(candidate, true);
    return candidate;
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    // A previous attempt already chose the image: keep it.
    const existing = (await executions.get(executionId)).imageId;
    if (existing === undefined) throw err;
    await write(existing, false);
    return existing;
  }
}

/**
 * The chain point this backup writes: null for MODE=FULL; the chain's FULL (id 0) when it starts
 * a chain; else the increment after the chain's last point. Its checkpoint is named after the
 * execution, so a retried task makes the same one and an old chain's never clash with it.
 */
export function chainPoint(
  mode: 'FULL' | 'INCREMENT',
  imageId: number,
  executionId: string,
  chain: Pick<Image, 'increments'> | null,
): TaskIncrement | null {
  if (mode === 'FULL') return null;
  const checkpoint = `lifeboat-${executionId}`;
  const last = chain?.increments.at(-1);
  if (!last) return { chain: imageId, parent: null, id: 0, checkpoint, parentCheckpoint: null };
  return {
    chain: imageId,
    parent: last.id,
    id: last.id + 1,
    checkpoint,
    // Chains written before checkpoints were recorded cannot be followed: the runner resets them.
    parentCheckpoint: last.checkpoint ?? `lifeboat-unknown-${last.id}`,
  };
}

export const handler = step('AdmitBackup', AdmitBackupInput, async (input) => {
  const { executionId } = input;
  // No write before the lock: the dispatcher recorded the start (RUNNING), and what Admit
  // decides is recorded in one write below.
  const vm = await vms.get(input.vmId);
  assertBackupableState(vm);
  const datastore = await datastores.get(input.datastoreId);
  const host = await hosts.get(vm.hostId);
  if (!host.queueUrl) throw new Conflict(`Host ${host.id} has no task queue`);
  // Sealed before anything is locked: a host that cannot open the secrets fails with nothing to undo.
  const taskDs = await taskDatastore(datastore, host, { jobId: input.jobId });

  // Also refused when queued; a request queued before the flatten began is stopped here.
  if (flattening(vm)) throw new Conflict(flatteningMessage(vm));
  // A job's backup: the job's BACKUP_CONFIG under the VM's own, and the job's RESET.
  const { jobId, jobConfig } = input;
  const configOf = (v: Vm) =>
    jobConfig ? underDefaults(v.backups.BACKUP_CONFIG, jobConfig) : v.backups.BACKUP_CONFIG;
  const config = effectiveConfig(configOf(vm));
  const reset = input.reset || jobConfig?.RESET === 'YES';
  const disks = selectDisks(vm.disks, config);
  const chainId = Number(vm.backups.BACKUP_CONFIG.INCREMENTAL_BACKUP_ID ?? Number.NaN);
  const chainImage = Number.isInteger(chainId) ? await images.find(chainId) : undefined;
  // On a retry the chain's image is already LOCKED by this very execution: still the chain.
  const chainView =
    chainImage?.executionId === executionId ? { ...chainImage, state: 'READY' as const } : chainImage;
  // A chain lives in one repository: the same datastore, and the same job (or none).
  const sameRepository = chainView?.datastoreId === datastore.id && chainView.jobId === jobId;
  const chain = chainView && sameRepository ? chainStateOf(chainView) : null;
  const decision = decideChain({ config, disks, chain, reset });

  const locked = await lockVm(vm, executionId, datastore.id);
  const extending = decision.mode === 'INCREMENT' && chain ? chain : null;
  const incrementOf = (id: number) =>
    chainPoint(config.mode, id, executionId, extending && chainImage ? chainImage : null);
  const imageId = await recordAdmitted(executionId, extending?.imageId ?? null, (id) => ({
    hostId: host.id,
    bytesTotal: disks.reduce((sum, d) => sum + d.size, 0),
    // Key by key: what queueing put there (the quota reservation, the schedule) stays.
    'params.reset': reset,
    'params.mode': decision.mode,
    'params.resetReason': decision.reset,
    'params.increment': incrementOf(id),
    ...(jobId !== undefined && { 'params.jobId': jobId }),
  }));
  const increment = incrementOf(imageId);
  const now = new Date().toISOString();
  if (extending) {
    // The chain's image is LOCKED while the increment is written (READY again at commit or failure).
    await images.update(imageId, { state: 'LOCKED', executionId });
  } else {
    const image: Image = {
      owner: vm.owner,
      group: vm.group,
      permissions: vm.permissions,
      id: imageId,
      name: `${vm.id}-${executionId}`,
      type: 'BACKUP',
      datastoreId: datastore.id,
      vmId: vm.id,
      state: 'LOCKED',
      // In MODE=INCREMENT a FULL backup starts a chain: its image holds the increments.
      mode: config.mode,
      source: '',
      size: 0,
      disks: [],
      template: '',
      increments: [],
      backupConfig: setRuntime(withDefaults(configOf(locked)), {
        LAST_DATASTORE_ID: null,
        LAST_BACKUP_ID: null,
        LAST_BACKUP_SIZE: null,
        LAST_INCREMENT_ID: null,
        INCREMENTAL_BACKUP_ID: null,
      }),
      ...(jobId !== undefined && { jobId }),
      executionId,
      createdAt: now,
    };
    // No read first: the condition keeps the image a previous attempt created.
    await images.put(image, { expression: 'attribute_not_exists(id)' }).catch((err) => {
      if (!isConditionFailed(err)) throw err;
    });
  }

  const { heartbeatSeconds } = limits();
  const task = BackupTaskFields.parse({
    ...taskHeader('backup', heartbeatSeconds, host.id),
    vm: taskVm(locked),
    disks: disks.map(taskDisk),
    config: { FS_FREEZE: config.fsFreeze, MODE: decision.mode, INCREMENT_MODE: config.incrementMode },
    increment,
    datastore: taskDs,
    imageId,
  });
  const cleanup = CleanupTaskFields.parse({
    ...taskHeader('cleanup', heartbeatSeconds, host.id),
    vm: taskVm(locked),
    imageId,
    datastore: taskDs,
  });
  return { hostId: host.id, imageId, queueUrl: host.queueUrl, task, cleanup };
});
