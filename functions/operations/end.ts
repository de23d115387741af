/**
 * The end of every operation, whichever way it ends: the Release step (success, and after
 * MarkFailed), MarkFailed itself, the dispatcher's sweep (an execution stopped from outside,
 * timed out, or killed with its stack before its Release ran) and the dispatcher dropping a
 * request that can never start. Each calls {@link endOperation} (MarkFailed calls
 * {@link undoMarks}), so every mark an operation sets is undone in this one file:
 *
 * | mark                          | set by                           | undone here                    |
 * |-------------------------------|----------------------------------|--------------------------------|
 * | the VM's `lock`               | backup Admit, in-place restore   | removed if this execution holds it |
 * | image LOCKED                  | backup Admit, queueFlatten       | READY (a chain, or a flatten's image), else ERROR |
 * | image DELETING                | image delete, KEEP_LAST          | ERROR after a failed delete (deletable again) |
 * | ACTIVE_FLATTEN                | backup Commit (KEEP_LAST)        | cleared when its flatten ends, or its backup died before queueing it |
 * | `queued:vm:<id>` guard        | queueing a backup                | freed for a request that never started |
 * | datastore quota reservation   | queueing a backup                | given back unless Commit settled it (quota.ts) |
 * | a job's BACKING_UP list       | job runs                         | the VM moved to UPDATED or ERROR, the next one queued |
 * | the MAX_BACKUPS(_HOST) slots  | the dispatcher                   | given back once, with the `released` flag |
 *
 * Every write is conditional on the mark still being this execution's, so running it twice (a
 * retried step, a sweep racing a late Release) changes nothing the second time. The marks go
 * first and the `released` flag last: an ending cut short is finished by the next one.
 *
 * Whoever releases a backup (the one write of Release's common path, or endOperation) also
 * prints its metrics (functions/metrics.ts) and, when it did not succeed, notifies it
 * (./alerts.ts): once per backup, and never failing the ending.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { z } from 'zod';
import { flattening } from '#core/backup-rules.ts';
import { type ExecutionState, takesSlot, wasCancelled } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { backupEndedMetrics } from '../metrics.ts';
import { releaseSlotItems } from '../repo/counters.ts';
import { type ExecutionRecord, executions } from '../repo/executions.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { heldBy, vms } from '../repo/vms.ts';
import { wakeDispatcher } from '../wake.ts';
import { backupFailed } from './alerts.ts';
import { freeQueuedGuard } from './backup-queue.ts';
import { drillEnded } from './drill.ts';
import { jobBackupEnded } from './job-progress.ts';
import { releaseReservation } from './quota.ts';

/** How the execution ended, as recorded by whoever releases it. */
export interface Ending {
  state: z.infer<typeof ExecutionState>;
  endedAt: string;
  error?: { name: string; message: string };
}

/**
 * Mark the execution released with `ending` and give its slot back (unless `heldSlot` is false:
 * a request that never started). Returns false when it was already released (by Release, or by
 * another sweep): then nothing changed.
 */
export async function releaseExecution(
  execution: ExecutionRecord,
  ending: Ending,
  options: { heldSlot?: boolean } = {},
): Promise<boolean> {
  const set = ['#r = :t', '#e = :e', '#s = :s'];
  const names: Record<string, string> = { '#r': 'released', '#e': 'endedAt', '#s': 'state' };
  const values: Record<string, unknown> = { ':t': true, ':e': ending.endedAt, ':s': ending.state };
  if (ending.error) {
    set.push('#err = :err');
    names['#err'] = 'error';
    values[':err'] = ending.error;
  }
  const mark = {
    Update: {
      TableName: executions.name,
      Key: { id: execution.id },
      UpdateExpression: `SET ${set.join(', ')}`,
      ConditionExpression: 'attribute_not_exists(#r)',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
  };
  // Maintenance operations never took a slot, nor did a request that never started: only the
  // flag and the end time change.
  const slot =
    execution.hostId === undefined || !takesSlot(execution.kind) || options.heldSlot === false
      ? []
      : releaseSlotItems(execution.hostId);
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: [mark, ...slot] }));
    return true;
  } catch (err) {
    const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
    if (!reasons) throw err;
    // Already released: a previous attempt (or the other releaser) did it.
    if (reasons[0]?.Code === 'ConditionalCheckFailed') return false;
    // A counter was already at zero: never go negative, but still end the execution.
    log('warn', 'slot counter already at zero', { executionId: execution.id, hostId: execution.hostId });
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: [mark] }));
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * The common ending in one write: a backup whose Commit returned (the state machine is at
 * Release, success path) is marked SUCCEEDED, phase `done` with its size, released, and its slot
 * given back, in one transaction conditional on it being RUNNING and not yet released. Nothing
 * is read: Commit's own conditional writes already undid its marks, and the host is the one
 * Admit sent the task to (`$.admit.hostId`). False when the condition failed (ended meanwhile,
 * by the sweep or a stop, or already released): the caller then takes the general way,
 * {@link endOperation}, which reads the record.
 */
export async function releaseCommittedBackup(
  executionId: string,
  hostId: number,
  ending: { endedAt: string; size: number; datastoreId?: number; startedAt?: string },
): Promise<boolean> {
  const mark = {
    Update: {
      TableName: executions.name,
      Key: { id: executionId },
      UpdateExpression: 'SET #r = :t, #e = :e, #s = :s, #p = :done, #bd = :size, #bt = :size',
      ConditionExpression:
        'attribute_exists(id) AND attribute_not_exists(#r) AND #s = :running AND #k = :backup',
      ExpressionAttributeNames: {
        '#r': 'released',
        '#e': 'endedAt',
        '#s': 'state',
        '#p': 'phase',
        '#bd': 'bytesDone',
        '#bt': 'bytesTotal',
        '#k': 'kind',
      },
      ExpressionAttributeValues: {
        ':t': true,
        ':e': ending.endedAt,
        ':s': 'SUCCEEDED',
        ':done': 'done',
        ':size': ending.size,
        ':running': 'RUNNING',
        ':backup': 'backup',
      },
    },
  };
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: [mark, ...releaseSlotItems(hostId)] }));
  } catch (err) {
    if ((err as { CancellationReasons?: unknown }).CancellationReasons) return false;
    throw err;
  }
  backupEnded(
    { datastoreId: ending.datastoreId, startedAt: ending.startedAt },
    'SUCCEEDED',
    ending.endedAt,
    ending.size,
  );
  return true;
}

/**
 * What people watch of a backup that just ended (called once per backup, by whoever released
 * it): its metrics (functions/metrics.ts). Never throws: the backup's ending does not depend on it.
 */
function backupEnded(
  record: Pick<ExecutionRecord, 'datastoreId' | 'startedAt'>,
  state: Ending['state'],
  endedAt: string,
  bytes: number | undefined,
): void {
  try {
    const seconds =
      record.startedAt === undefined
        ? undefined
        : (Date.parse(endedAt) - Date.parse(record.startedAt)) / 1000;
    backupEndedMetrics({
      datastoreId: record.datastoreId,
      succeeded: state === 'SUCCEEDED',
      ...(bytes !== undefined && { bytes }),
      ...(seconds !== undefined && Number.isFinite(seconds) && { seconds }),
    });
  } catch (err) {
    log('warn', 'backup metrics not written', { error: String(err) });
  }
}

/** A conditional write whose condition failed (the mark is not ours, or gone) did its job. */
function unlessNotOurs(err: unknown): void {
  if (!isConditionFailed(err) && !(err instanceof Error && err.name === 'NotFound')) throw err;
}

/** Give the VM's lock back if `executionId` holds it. */
async function unlockVm(vmId: number, executionId: string): Promise<void> {
  await vms.update(vmId, {}, { remove: ['lock'], condition: heldBy(executionId) }).catch(unlessNotOurs);
}

/**
 * The image this execution LOCKED goes back to `state` (when it is still locked by it). An
 * image created by a failed backup has no data: ERROR; a chain image (its earlier points stay
 * valid) or a flatten's image (its chain as it was): READY.
 */
async function unlockImage(imageId: number, executionId: string, kind: 'backup' | 'flatten'): Promise<void> {
  const image = await images.find(imageId);
  if (image?.state !== 'LOCKED' || image.executionId !== executionId) return;
  const state = kind === 'flatten' || image.increments.length > 0 ? 'READY' : 'ERROR';
  await images
    .update(
      imageId,
      { state },
      {
        condition: {
          expression: '#s = :locked AND #e = :me',
          names: { '#s': 'state', '#e': 'executionId' },
          values: { ':locked': 'LOCKED', ':me': executionId },
        },
      },
    )
    .catch(unlessNotOurs);
}

/** Clear the VM's ACTIVE_FLATTEN (only that key: a BACKUP_CONFIG change made meanwhile is kept). */
export async function clearActiveFlatten(vmId: number): Promise<void> {
  const vm = await vms.find(vmId);
  if (!vm || !flattening(vm)) return;
  await vms.update(vm.id, {}, { remove: ['backups.BACKUP_CONFIG.ACTIVE_FLATTEN'] }).catch(unlessNotOurs);
}

/**
 * ACTIVE_FLATTEN set by this backup's own Commit (in the write that unlocked the VM) when the
 * Commit died before it queued the flatten: no flatten will ever clear it. A flatten that was
 * queued holds the chain image LOCKED (or notes its id on the backup): that one clears it.
 */
async function clearOrphanFlatten(record: ExecutionRecord): Promise<void> {
  if (record.phase !== 'committing' || record.vmId === undefined || record.params.flatten !== undefined)
    return;
  const vm = await vms.find(record.vmId);
  if (!vm || !flattening(vm) || vm.lock === record.id) return;
  const chainId = Number(vm.backups.BACKUP_CONFIG.INCREMENTAL_BACKUP_ID ?? Number.NaN);
  const chain = Number.isInteger(chainId) ? await images.find(chainId) : undefined;
  if (chain?.state === 'LOCKED' && chain.executionId !== record.id) return;
  await clearActiveFlatten(vm.id);
}

/**
 * Undo the marks the operation of `record` may still hold (see the table above). `state` is how
 * it ended: a delete that failed leaves its image ERROR, one that succeeded has nothing to undo.
 */
export async function undoMarks(record: ExecutionRecord, state: Ending['state']): Promise<void> {
  const { id, vmId, imageId } = record;
  switch (record.kind) {
    case 'backup':
      if (imageId !== undefined) await unlockImage(imageId, id, 'backup');
      if (vmId !== undefined) {
        // Before the unlock: a VM still locked by this backup never got its Commit's write.
        await clearOrphanFlatten(record);
        await unlockVm(vmId, id);
        // A request that never started still holds its VM's "queued" guard.
        if (record.executionArn === undefined) await freeQueuedGuard(vmId, id);
      }
      // Ended without its Commit's settlement: its quota reservation goes back.
      await releaseReservation(record);
      return;
    case 'restore':
      // Only an in-place restore locks its VM; heldBy leaves any other lock alone.
      if (vmId !== undefined) await unlockVm(vmId, id);
      return;
    case 'flatten': {
      if (imageId !== undefined) await unlockImage(imageId, id, 'flatten');
      const vm = vmId ?? (imageId === undefined ? undefined : (await images.find(imageId))?.vmId);
      if (vm !== undefined) await clearActiveFlatten(vm);
      return;
    }
    case 'delete':
      if (state === 'SUCCEEDED' || imageId === undefined) return;
      // The data may still be there: ERROR lets the user delete again (the VM forgot it already).
      await images
        .update(
          imageId,
          { state: 'ERROR' },
          { condition: { expression: '#s = :d', names: { '#s': 'state' }, values: { ':d': 'DELETING' } } },
        )
        .catch(unlessNotOurs);
      return;
    case 'drill':
      // A drill that ended without its Commit (cancelled, timed out, failed): its report ends too.
      if (state !== 'SUCCEEDED' && typeof record.params.drillId === 'number')
        await drillEnded(record.params.drillId, state, record.error);
      return;
    default:
      // download, verify, monitor: nothing but the `released` flag.
      return;
  }
}

/** Who ends an operation, and what it knows. */
export interface EndOptions {
  /** The backup job of a backup, when the caller knows it (else the execution's `params.jobId`). */
  jobId?: number;
  /** False for a request that never started: it holds no slot. */
  heldSlot?: boolean;
  /** Wake the dispatcher afterwards, so a queued operation can take what was freed. */
  wake?: boolean;
  /** A backup's stored bytes, when the caller knows them (Commit's size): its BackupBytes metric. */
  bytes?: number;
}

/**
 * End the operation of `record` as `ending`: undo its marks, then mark it released and give its
 * slot back exactly once, then move its backup job on (only the caller that released it, so a
 * retried Release never queues a VM twice). Idempotent. Answers whether this call released it.
 * After a Commit that finished (phase `done`) and a success, the marks are already gone (the
 * Commit's own conditional writes undid them with the result): nothing is read or written again.
 */
export async function endOperation(
  record: ExecutionRecord,
  ending: Ending,
  options: EndOptions = {},
): Promise<boolean> {
  if (!(ending.state === 'SUCCEEDED' && record.phase === 'done')) await undoMarks(record, ending.state);
  const released = !record.released && (await releaseExecution(record, ending, options));
  if (released && record.kind === 'backup') {
    backupEnded(
      record,
      ending.state,
      ending.endedAt,
      ending.state === 'SUCCEEDED' ? options.bytes : undefined,
    );
    // Told once, by the caller that released it; a notifier that fails changes nothing here.
    // (MarkFailed recorded the error on the execution before ReleaseFailed ends it.) A backup
    // someone cancelled did not fail: nobody is woken for it.
    const error = ending.error ?? record.error;
    if (ending.state !== 'SUCCEEDED' && !wasCancelled({ error })) {
      await backupFailed(record, { ...ending, ...(error && { error }) });
    }
    const jobId =
      options.jobId ?? (typeof record.params.jobId === 'number' ? record.params.jobId : undefined);
    if (jobId !== undefined) await jobBackupEnded(record, ending.state, jobId);
  }
  if (options.wake) await wakeDispatcher(`execution ${record.id} ended`);
  return released;
}
