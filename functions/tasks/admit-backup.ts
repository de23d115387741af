/**
 * Backup step Admit: checks the VM and datastore, decides FULL or INCREMENT and the disks,
 * takes the VM's lock, creates (or, for an increment, re-locks) the image, and builds the host
 * task. Idempotent: a retry finds its lock, its image id on the execution, and rebuilds the same
 * task.
 */

import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { effectiveConfig, setRuntime, underDefaults, withDefaults } from '#core/backup-config.ts';
import { assertBackupableState, flattening, flatteningMessage, lockedMessage } from '#core/backup-rules.ts';
import { chainStateOf, decideChain, selectDisks } from '#core/chain.ts';
import { BackupTask, CleanupTask, type TaskIncrement } from '#core/contracts/tasks.ts';
import { Conflict, NotFound } from '#core/errors.ts';
import { BackupConfigRecord, type Datastore, type Host, Id, type Image, type Vm } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { limits } from '../env.ts';
import { batchFind } from '../repo/batch.ts';
import { allocateId } from '../repo/counters.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { images } from '../repo/images.ts';
import { cancellationCodes, type TransactItem } from '../repo/table.ts';
import { lockCondition, vms } from '../repo/vms.ts';
import { StepInput, step, taskDatastore, taskDisk, taskHeader, taskVm } from './common.ts';

export const AdmitBackupInput = StepInput.extend({
  vmId: Id,
  /** The VM's host when it was queued (absent from requests queued before it was recorded). */
  hostId: Id.optional(),
  datastoreId: Id,
  reset: z.boolean().default(false),
  /** A backup job's backup: its id, and its BACKUP_CONFIG defaults (and RESET) at queueing. */
  jobId: Id.optional(),
  jobConfig: BackupConfigRecord.optional(),
});

type AdmitBackupInput = z.infer<typeof AdmitBackupInput>;

/** The task fields the ASL copies into the message (TASK_FIELDS.backup / .cleanup). */
const BackupTaskFields = BackupTask.omit({ taskId: true, token: true });
const CleanupTaskFields = CleanupTask.omit({ taskId: true, token: true, failedTaskId: true });

/** The VM, its datastore and its host: one BatchGetItem when the queue recorded the host. */
async function admission(input: AdmitBackupInput): Promise<{ vm: Vm; datastore: Datastore; host: Host }> {
  if (input.hostId === undefined) {
    // Queued before requests recorded the host.
    const vm = await vms.get(input.vmId);
    return { vm, datastore: await datastores.get(input.datastoreId), host: await hosts.get(vm.hostId) };
  }
  const found = await batchFind([
    { table: vms, keys: [input.vmId] },
    { table: datastores, keys: [input.datastoreId] },
    { table: hosts, keys: [input.hostId] },
  ]);
  const vm = found.get(vms.name)?.get(input.vmId) as Vm | undefined;
  const datastore = found.get(datastores.name)?.get(input.datastoreId) as Datastore | undefined;
  if (!vm) throw new NotFound(`VM ${input.vmId} does not exist`);
  if (!datastore) throw new NotFound(`Datastore ${input.datastoreId} does not exist`);
  // Moved since it was queued (the inventory follows libvirt): its task goes where it is now.
  const queuedHost = found.get(hosts.name)?.get(input.hostId) as Host | undefined;
  const host = vm.hostId === input.hostId && queuedHost ? queuedHost : await hosts.get(vm.hostId);
  return { vm, datastore, host };
}

/**
 * Everything Admit decides, in one transaction: the VM's lock (only on the host the task goes
 * to: an inventory may have moved the VM since it was read), the execution's record (RUNNING,
 * the host, the image id and the task's parameters) and the image (created LOCKED, or a chain's
 * image LOCKED again). A retry after it committed finds the execution's image id recorded and
 * keeps it. Answers the image id.
 */
async function recordAdmission(
  vm: Vm,
  executionId: string,
  datastoreId: number,
  imageId: number,
  execution: Record<string, unknown>,
  image: TransactItem,
): Promise<number> {
  const items = [
    vms.updateItem(
      vm.id,
      { lock: executionId, 'backups.BACKUP_CONFIG.LAST_DATASTORE_ID': String(datastoreId) },
      { condition: lockCondition(executionId, vm.hostId) },
    ),
    executions.updateItem(
      executionId,
      { state: 'RUNNING', phase: 'running', imageId, ...execution },
      {
        condition: {
          expression: 'attribute_not_exists(#i) OR #i = :i',
          names: { '#i': 'imageId' },
          values: { ':i': imageId },
        },
      },
    ),
    image,
  ];
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: items }));
    return imageId;
  } catch (err) {
    const [lock, record, written] = cancellationCodes(err);
    if (lock === 'ConditionalCheckFailed') {
      const now = await vms.find(vm.id);
      if (now && now.hostId !== vm.hostId)
        throw new Conflict(
          `VM ${vm.id} moved from host ${vm.hostId} to host ${now.hostId}: back it up again`,
        );
      throw new Conflict(lockedMessage({ id: vm.id, lock: now?.lock ?? vm.lock }));
    }
    // The record holds another image id: only this transaction writes it, so a previous
    // attempt committed all three writes. Keep its image.
    if (record === 'ConditionalCheckFailed') {
      const existing = (await executions.get(executionId)).imageId;
      if (existing !== undefined) return existing;
    }
    if (written === 'ConditionalCheckFailed') {
      throw new Conflict(
        `Image ${imageId} changed while backup ${executionId} was admitted: back it up again`,
      );
    }
    throw err;
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
  // decides is recorded in one transaction below.
  const { vm, datastore, host } = await admission(input);
  assertBackupableState(vm);
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

  // The VM as the lock leaves it (the task and the image's config are built from it).
  const locked: Vm = {
    ...vm,
    lock: executionId,
    backups: {
      ...vm.backups,
      BACKUP_CONFIG: { ...vm.backups.BACKUP_CONFIG, LAST_DATASTORE_ID: String(datastore.id) },
    },
  };
  const extending = decision.mode === 'INCREMENT' && chain ? chain : null;
  const incrementOf = (id: number) =>
    chainPoint(config.mode, id, executionId, extending && chainImage ? chainImage : null);
  const candidate = extending?.imageId ?? (await allocateId('image'));
  const now = new Date().toISOString();
  const imageId = await recordAdmission(
    vm,
    executionId,
    datastore.id,
    candidate,
    {
      hostId: host.id,
      bytesTotal: disks.reduce((sum, d) => sum + d.size, 0),
      // Key by key: what queueing put there (the quota reservation, the schedule) stays.
      'params.reset': reset,
      'params.mode': decision.mode,
      'params.resetReason': decision.reset,
      'params.increment': incrementOf(candidate),
      ...(jobId !== undefined && { 'params.jobId': jobId }),
    },
    extending
      ? // The chain's image is LOCKED while the increment is written (READY again at commit or failure).
        images.updateItem(candidate, { state: 'LOCKED', executionId })
      : // The condition keeps an image a previous attempt created.
        images.putItem(
          {
            owner: vm.owner,
            group: vm.group,
            permissions: vm.permissions,
            id: candidate,
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
          },
          { expression: 'attribute_not_exists(id)' },
        ),
  );
  const increment = incrementOf(imageId);

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
