/**
 * Backup step Commit: records the runner's result (`$.host`, a BackupResult): the image READY
 * with its source, disks (each with the sha256 the runner verified), size, template and
 * `verifiedAt` (or the new increment appended to its chain, with its own), the
 * image id in the VM's BACKUP_IDS, the runtime BACKUP_CONFIG keys (LAST_BACKUP_ID and
 * LAST_BACKUP_SIZE: the backup just stored), and the VM unlocked; then a `monitor` of the
 * datastore is queued (its FREE changed).
 * Retention (KEEP_LAST, or GFS with KEEP_HOURLY..KEEP_YEARLY: operations/retention.ts): the
 * expired ids leave BACKUP_IDS in the same write, become DELETING and each gets a `delete`
 * execution (Maintenance machine). On an increment chain to flatten, ACTIVE_FLATTEN is set in
 * the same write and a `flatten` is queued (see `flatten.ts`).
 * Idempotent: a retry finds the image already committed and the lock already gone. Its output
 * (`$.commit`) tells Release the commit is done: Release records phase `done` and the size.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { setRuntime } from '#core/backup-config.ts';
import { BackupResult } from '#core/contracts/tasks.ts';
import { Conflict, NotFound } from '#core/errors.ts';
import { Id, type Image, type Increment, type Vm } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { monitorIntervalMinutes, queueMonitor } from '../operations/capacity.ts';
import { clearActiveFlatten } from '../operations/end.ts';
import { queueFlatten } from '../operations/flatten.ts';
import { claimDeletion, enqueueDeletes, maintenanceHost } from '../operations/maintenance.ts';
import { settleBackupQuota } from '../operations/quota.ts';
import { decideRetention } from '../operations/retention.ts';
import { batchFind } from '../repo/batch.ts';
import { allocateId } from '../repo/counters.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { images } from '../repo/images.ts';
import { cancellationCodes } from '../repo/table.ts';
import { heldBy, vms } from '../repo/vms.ts';
import { wakeDispatcher } from '../wake.ts';
import { StepInput, step } from './common.ts';

/** Who retention's delete executions are requested by. */
export const RETENTION_REQUESTER = { name: 'lifeboat:retention' };

export const CommitBackupInput = StepInput.extend({ host: BackupResult });

/** Bytes the backup wrote to the datastore (its disks' files). */
function writtenBytes(result: BackupResult): number {
  return result.disks.reduce((sum, d) => sum + d.size, 0);
}

/** The image after the result, and the size this backup added. */
export function committedImage(
  image: Image,
  result: BackupResult,
  now: string,
): { image: Image; added: number } {
  const added = writtenBytes(result);
  if (image.increments.some((i) => i.source === result.backupId) || image.source === result.backupId) {
    return { image, added: 0 };
  }
  const files = result.disks.map((d) => ({
    id: d.id,
    file: d.file,
    size: d.size,
    ...(d.sha256 ? { sha256: d.sha256 } : {}),
  }));
  const verified = result.verifiedAt ? { verifiedAt: result.verifiedAt } : {};
  const point = {
    source: result.backupId,
    size: added,
    date: now,
    disks: files,
    ...verified,
    ...(result.increment?.checkpoint ? { checkpoint: result.increment.checkpoint } : {}),
  };
  if (result.increment && result.increment.parent !== null && image.increments.length > 0) {
    const increment: Increment = {
      id: result.increment.id,
      parent: result.increment.parent,
      type: 'INCREMENT',
      ...point,
    };
    return {
      image: {
        ...image,
        state: 'READY',
        size: image.size + added,
        increments: [...image.increments, increment],
      },
      added,
    };
  }
  const disks = result.disks.map((d) => ({
    id: d.id,
    size: d.size,
    virtualSize: d.virtualSize,
    format: d.format,
    file: d.file,
    ...(d.sha256 ? { sha256: d.sha256 } : {}),
  }));
  // A FULL in MODE=INCREMENT opens a chain: it is increment 0 of its image.
  const increments: Increment[] =
    image.mode === 'INCREMENT'
      ? [
          {
            id: result.increment?.id ?? 0,
            type: 'FULL',
            ...point,
            ...(result.chainReset ? { resetReason: result.chainReset } : {}),
          },
        ]
      : [];
  return {
    image: {
      ...image,
      state: 'READY',
      source: result.backupId,
      disks,
      size: added,
      template: result.template,
      increments,
      ...(result.verifiedAt ? { verifiedAt: result.verifiedAt, verifyState: 'OK' as const } : {}),
    },
    added,
  };
}

/**
 * The image a backup commits into. Usually the execution's own; but when the runner could not
 * follow the chain and took a FULL instead (`chainReset`), the chain's image goes back to READY
 * untouched and the FULL starts a new image (its id kept on the execution, so a retry finds it).
 */
async function targetImage(
  execution: { id: string; imageId: number; params: Record<string, unknown> },
  current: Image,
  result: BackupResult,
  now: string,
): Promise<Image> {
  const extendsChain = current.increments.length > 0 && current.source !== result.backupId;
  if (!(result.chainReset && result.increment?.parent === null && extendsChain)) return current;
  if (current.state === 'LOCKED' && current.executionId === execution.id) {
    await images.update(current.id, { state: 'READY' });
  }
  const known = z.number().int().safeParse(execution.params.resetImageId);
  const id = known.success ? known.data : await allocateId('image');
  if (!known.success) await executions.update(execution.id, { 'params.resetImageId': id });
  if (execution.imageId !== id) await executions.update(execution.id, { imageId: id });
  const found = await images.find(id);
  if (found) return found;
  const fresh: Image = {
    ...current,
    id,
    name: `${current.vmId}-${execution.id}`,
    state: 'LOCKED',
    source: '',
    size: 0,
    disks: [],
    template: '',
    increments: [],
    // Charged on its own at settlement: the chain's quota charge stays with the chain.
    quota: undefined,
    executionId: execution.id,
    createdAt: now,
  };
  await images.put(fresh, { expression: 'attribute_not_exists(id)' });
  log('warn', 'increment could not follow its chain: a new chain was started', {
    executionId: execution.id,
    chainImageId: current.id,
    imageId: id,
    reason: result.chainReset,
  });
  return fresh;
}

/**
 * Queue the removal of images KEEP_LAST dropped from BACKUP_IDS: each READY/ERROR one becomes
 * DELETING and gets its delete executions, then the dispatcher is woken once. Failures are
 * logged, not thrown: the backup itself is committed, and an image left READY can be deleted
 * by hand.
 */
async function expire(
  ids: readonly number[],
  executionId: string,
  fallbackHostId?: number,
): Promise<number[]> {
  const queued: number[] = [];
  // Nothing expired (the common case): no read of the fallback host.
  if (ids.length === 0) return queued;
  const fallback = fallbackHostId === undefined ? undefined : await hosts.find(fallbackHostId);
  for (const id of ids) {
    try {
      const image = await images.find(id);
      if (!image || !(await claimDeletion(id))) continue;
      const datastore = await datastores.get(image.datastoreId);
      const host = await maintenanceHost(datastore, image.vmId).catch((err) => {
        if (err instanceof Conflict && fallback) return fallback;
        throw err;
      });
      await enqueueDeletes(RETENTION_REQUESTER, { ...image, state: 'DELETING' }, datastore, host, {
        wake: false,
      });
      queued.push(id);
    } catch (err) {
      log('warn', 'KEEP_LAST: image not queued for deletion', {
        executionId,
        imageId: id,
        error: err instanceof Error ? err.name : String(err),
        message: err instanceof Error ? err.message : undefined,
      });
    }
  }
  if (queued.length > 0) await wakeDispatcher(`KEEP_LAST after execution ${executionId}`);
  return queued;
}

/**
 * Queues the flatten of the chain `image` once (its execution id is kept on the backup's
 * execution for retries). A failure is logged and ACTIVE_FLATTEN cleared: the backup itself is
 * committed, and the next backup's commit tries again.
 */
async function startFlatten(image: Image, executionId: string, hostId?: number): Promise<string | undefined> {
  const execution = await executions.get(executionId);
  const known = z.string().safeParse(execution.params.flatten);
  if (known.success) return known.data;
  try {
    const datastore = await datastores.get(image.datastoreId);
    const fallback = hostId === undefined ? undefined : await hosts.find(hostId);
    const host = await maintenanceHost(datastore, image.vmId).catch((err) => {
      if (err instanceof Conflict && fallback) return fallback;
      throw err;
    });
    const queued = await queueFlatten(image, datastore, host);
    if (!queued) return undefined;
    await executions.update(executionId, { 'params.flatten': queued.id });
    return queued.id;
  } catch (err) {
    log('warn', 'KEEP_LAST: flatten not queued', {
      executionId,
      imageId: image.id,
      message: err instanceof Error ? err.message : String(err),
    });
    await clearActiveFlatten(image.vmId).catch(() => {});
    return undefined;
  }
}

/**
 * Queues a `monitor` of the datastore the backup went to (its FREE changed; the dispatcher runs
 * it when Release wakes it). A failure is logged, not thrown: the backup itself is committed.
 */
async function remeasure(datastoreId: number, executionId: string, hostId?: number): Promise<void> {
  if (monitorIntervalMinutes() === 0) return;
  try {
    const fallbackHost = () => (hostId === undefined ? Promise.resolve(undefined) : hosts.find(hostId));
    await queueMonitor(datastoreId, { fallbackHost, wake: false });
  } catch (err) {
    log('warn', 'datastore monitor after the backup not queued', {
      executionId,
      datastoreId,
      message: err instanceof Error ? err.message : String(err),
    });
  }
}

export const handler = step('CommitBackup', CommitBackupInput, async (input) => {
  const { executionId, host: result } = input;
  // One write that also reads: the record as it is now `committing` (ReturnValues ALL_NEW).
  const execution = await executions.update(executionId, { phase: 'committing' });
  if (execution.imageId === undefined || execution.vmId === undefined) {
    throw new Conflict(`execution ${executionId} has no image or VM to commit`);
  }
  const now = new Date().toISOString();
  // The execution's image and its VM in one read.
  const found = await batchFind([
    { table: images, keys: [execution.imageId] },
    { table: vms, keys: [execution.vmId] },
  ]);
  const stored = found.get(images.name)?.get(execution.imageId) as Image | undefined;
  const vm = found.get(vms.name)?.get(execution.vmId) as Vm | undefined;
  if (!stored) throw new NotFound(`Image ${execution.imageId} does not exist`);
  if (!vm) throw new NotFound(`VM ${execution.vmId} does not exist`);
  const current = await targetImage(
    { id: executionId, imageId: execution.imageId, params: execution.params },
    stored,
    result,
    now,
  );
  const { image } = committedImage(current, result, now);
  const written = writtenBytes(result);

  const chained = image.mode === 'INCREMENT';
  const lastIncrement = image.increments.at(-1)?.id ?? null;
  const appended = vm.backups.BACKUP_IDS.includes(image.id)
    ? vm.backups.BACKUP_IDS
    : [...vm.backups.BACKUP_IDS, image.id];
  // KEEP_LAST or GFS: expired backups, and a chain's oldest points merged into a new base
  // (ACTIVE_FLATTEN meanwhile).
  const { expired: dropped, flatten } = await decideRetention(vm, image, appended);
  const config = setRuntime(vm.backups.BACKUP_CONFIG, {
    LAST_DATASTORE_ID: null,
    // The backup just stored: its driver id and the bytes it added (what people watch).
    LAST_BACKUP_ID: result.backupId,
    LAST_BACKUP_SIZE: written,
    INCREMENTAL_BACKUP_ID: chained ? image.id : null,
    LAST_INCREMENT_ID: chained ? lastIncrement : null,
    ...(flatten ? { ACTIVE_FLATTEN: 'YES' } : {}),
  });
  // Kept on the execution first, so a retry after the VM write still queues their deletion.
  const earlier = z
    .array(Id)
    .catch([])
    .parse(execution.params.retention ?? []);
  const expired = [...new Set([...earlier, ...dropped])];
  if (dropped.length > 0) await executions.update(executionId, { 'params.retention': expired });
  const ids = appended.filter((id) => !expired.includes(id));
  // One transaction: the image READY, and the VM's BACKUP_IDS, config and unlock, only while
  // this execution holds the lock.
  const vmWrite = vms.updateItem(
    vm.id,
    { 'backups.BACKUP_IDS': ids, 'backups.BACKUP_CONFIG': config },
    { remove: ['lock'], condition: heldBy(executionId) },
  );
  const items = image === current ? [vmWrite] : [images.putItem({ ...image, executionId }), vmWrite];
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: items }));
  } catch (err) {
    if (cancellationCodes(err).at(-1) !== 'ConditionalCheckFailed') throw err;
    // Lock released: by a previous attempt of this step, which committed image and VM together,
    // or by the ending of a cancelled (or timed out) backup, which must stay uncommitted.
    const now = await executions.get(executionId);
    if (now.state !== 'RUNNING') {
      throw new Conflict(
        `execution ${executionId} is ${now.state}: backup ${result.backupId} is not committed`,
      );
    }
  }
  // The quota reserved at queueing, settled with what was really written (once per execution).
  await settleBackupQuota(execution, image, written);
  const deleting = await expire(expired, executionId, execution.hostId);
  const flattenId = flatten ? await startFlatten(image, executionId, execution.hostId) : undefined;
  await remeasure(image.datastoreId, executionId, execution.hostId);
  // Phase `done` and the bytes are written by Release, in its one transaction (`$.commit.size`).
  return {
    imageId: image.id,
    backupId: result.backupId,
    size: image.size,
    // For Release's BackupSeconds metric (it reads no record on its common path).
    ...(execution.startedAt !== undefined && { startedAt: execution.startedAt }),
    deleting,
    flatten: flattenId ?? null,
  };
});
