/**
 * Queueing one VM backup: the checks every source shares (a user's request, a scheduled action,
 * a backup job's run) and the per-VM "queued" guard. The guard is one counters item
 * (`queued:vm:<id>` = the execution id), written conditionally with the request (one transaction), so two
 * requests for the same VM cannot both queue; the dispatcher deletes it when the request leaves
 * the queue. Checking the pending index instead would read every queued request per call.
 */
import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { estimateBackup } from '#core/backup-estimate.ts';
import { assertBackupable } from '#core/backup-rules.ts';
import { Conflict } from '#core/errors.ts';
import type { BackupConfigRecord, Datastore, Execution, User, Vm } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { retry } from '#platform/retry.ts';
import { tableName } from '../env.ts';
import { allocateId } from '../repo/counters.ts';
import { executions } from '../repo/executions.ts';
import type { TransactItem } from '../repo/table.ts';
import { isConditionFailed } from '../repo/table.ts';
import { assertRoomForBackup } from './capacity.ts';
import { enqueue } from './queue.ts';
import { backupReservation, queueWithQuota } from './quota.ts';

/** Name of the guard item of a VM's queued backup. */
export function queuedGuardName(vmId: number): string {
  return `queued:vm:${vmId}`;
}

/** The guard item for `executionId`, over no guard (`holder` undefined) or a stale one's. */
function guardItem(vmId: number, executionId: string, holder: string | undefined): TransactItem {
  return {
    Put: {
      TableName: tableName('counters'),
      Item: { name: queuedGuardName(vmId), value: executionId },
      ConditionExpression: holder === undefined ? 'attribute_not_exists(#n)' : '#v = :old',
      ExpressionAttributeNames: holder === undefined ? { '#n': 'name' } : { '#v': 'value' },
      ExpressionAttributeValues: holder === undefined ? undefined : { ':old': holder },
    },
  };
}

/** True when a transaction was cancelled by its guard item's condition (the third item). */
function guardRefused(err: unknown): boolean {
  if (!(err instanceof Error) || err.name !== 'TransactionCanceledException') return false;
  const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons[2]?.Code === 'ConditionalCheckFailed';
}

/**
 * Queue with the VM's guard taken in the same transaction. The common case is that one write;
 * a guard already there is read: a holder still QUEUED is a 409, a stale one (its execution left
 * the queue without freeing it) is taken over.
 */
async function enqueueGuarded(
  vmId: number,
  executionId: string,
  queue: (guard: TransactItem) => Promise<Execution>,
) {
  const table = tableName('counters');
  let holder: string | undefined;
  return retry(
    async () => {
      try {
        return await queue(guardItem(vmId, executionId, holder));
      } catch (err) {
        if (!guardRefused(err)) throw err;
        const current = await dynamo().send(
          new GetCommand({ TableName: table, Key: { name: queuedGuardName(vmId) }, ConsistentRead: true }),
        );
        holder = current.Item?.value as string | undefined;
        if (holder !== undefined && (await executions.find(holder))?.state === 'QUEUED') {
          throw new Conflict(`VM ${vmId} already has a backup queued (execution ${holder})`);
        }
        // Stale or freed meanwhile: try again.
        throw err;
      }
    },
    {
      attempts: 3,
      retryOn: guardRefused,
      exhausted: () => new Conflict(`VM ${vmId} already has a backup queued`),
    },
  );
}

/** Free the VM's guard if `executionId` holds it (the dispatcher, when the request leaves the queue). */
export async function freeQueuedGuard(vmId: number, executionId: string): Promise<void> {
  try {
    await dynamo().send(
      new DeleteCommand({
        TableName: tableName('counters'),
        Key: { name: queuedGuardName(vmId) },
        ConditionExpression: '#v = :me',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':me': executionId },
      }),
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
  }
}

/** What to back up where, and on whose behalf. */
export interface VmBackupRequest {
  datastoreId: number;
  /** That datastore when the caller read it already (the API route): not read again. */
  datastore?: Datastore;
  reset: boolean;
  priority: number;
  /** The backup job this backup belongs to, with its BACKUP_CONFIG defaults. */
  job?: { id: number; config: BackupConfigRecord };
  /** The scheduled action that asked for it. */
  scheduleId?: number;
  /** False: the caller wakes the dispatcher once after queueing several. */
  wake?: boolean;
}

/**
 * Queue a backup of `vm` (already checked for permissions): 409 when the VM is not RUNNING or
 * POWEROFF, is locked by a running backup, has its chain being flattened, already has one
 * queued, or its estimated size exceeds the datastore's FREE (`capacity.ts`); 403 when its
 * owner's or group's datastore quota has no room for it (functions/operations/quota.ts).
 */
export async function queueVmBackup(
  user: Pick<User, 'name'>,
  vm: Vm,
  request: VmBackupRequest,
): Promise<Execution> {
  assertBackupable(vm);
  const { datastoreId, reset, job, scheduleId } = request;
  // One estimate for both admissions: the datastore's FREE and the owner's quota.
  const estimate = estimateBackup(vm, { reset, jobConfig: job?.config });
  // Datastore capacity: a backup whose estimate exceeds the last measured FREE is never queued.
  await assertRoomForBackup(vm.id, estimate, request);
  const id = String(await allocateId('execution'));
  // The owner's datastore quota, reserved in the queueing transaction (403 when it cannot fit).
  const quota = backupReservation(vm, datastoreId, estimate);
  return enqueueGuarded(vm.id, id, (guard) =>
    queueWithQuota(quota, (reservation) =>
      enqueue(
        user,
        {
          id,
          kind: 'backup',
          priority: request.priority,
          hostId: vm.hostId,
          vmId: vm.id,
          datastoreId,
          params: {
            reset,
            ...(job && { jobId: job.id }),
            ...(scheduleId !== undefined && { scheduleId }),
            ...(quota && { quota }),
          },
          input: (executionId) => ({
            executionId,
            vmId: vm.id,
            // Admit reads VM, datastore and host in one call (and follows a VM moved meanwhile).
            hostId: vm.hostId,
            datastoreId,
            reset,
            // The job's BACKUP_CONFIG defaults: Admit applies them under the VM's own values.
            ...(job && { jobId: job.id, jobConfig: job.config }),
          }),
        },
        { wake: request.wake, guard, also: reservation },
      ),
    ),
  );
}
