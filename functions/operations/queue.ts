/**
 * Queueing any operation (the API, scheduled actions, jobs and retention all queue through here): allocates the execution id, writes the Execution (QUEUED) and the
 * Request the dispatcher picks up, then wakes the dispatcher.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Execution, User } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { allocateId } from '../repo/counters.ts';
import { ExecutionRecord, executions, publicExecution } from '../repo/executions.ts';
import { PENDING, Request, requestRank, requests } from '../repo/requests.ts';
import type { TransactItem } from '../repo/table.ts';
import { wakeDispatcher } from '../wake.ts';

/** What to queue. `input` builds the state machine input from the execution id. */
export interface Operation {
  kind: Execution['kind'];
  priority: number;
  hostId: number;
  vmId?: number;
  datastoreId?: number;
  imageId?: number;
  params: Record<string, unknown>;
  input: (executionId: string) => Record<string, unknown>;
  /** An execution id the caller already allocated (counter `id:execution`); default: a new one. */
  id?: string;
}

/**
 * Queue the operation and answer its Execution (state QUEUED). `user` is who asked (a step such
 * as retention passes its own name). `wake: false` leaves waking the dispatcher to the caller,
 * which queues several operations and wakes it once. `guard` is written in the same transaction
 * (its condition failing cancels it all: TransactionCanceledException, reason at index 2), and
 * `also` after it (a backup's quota reservation, functions/operations/quota.ts).
 */
export async function enqueue(
  user: Pick<User, 'name'>,
  op: Operation,
  options: { wake?: boolean; guard?: TransactItem; also?: TransactItem[] } = {},
): Promise<Execution> {
  const id = op.id ?? String(await allocateId('execution'));
  const createdAt = new Date().toISOString();
  const execution = ExecutionRecord.parse({
    id,
    kind: op.kind,
    state: 'QUEUED',
    phase: 'queued',
    vmId: op.vmId,
    hostId: op.hostId,
    datastoreId: op.datastoreId,
    imageId: op.imageId,
    requestedBy: user.name,
    priority: op.priority,
    params: op.params,
    createdAt,
  });
  const request = Request.parse({
    id,
    kind: op.kind,
    queue: PENDING,
    rank: requestRank(op.priority, createdAt),
    priority: op.priority,
    hostId: op.hostId,
    vmId: op.vmId,
    datastoreId: op.datastoreId,
    imageId: op.imageId,
    input: op.input(id),
    requestedBy: user.name,
    createdAt,
  });
  // One transaction: a request the dispatcher sees always has its execution record, and a
  // caller's guard (`options.guard`, e.g. a VM's "queued" item) is taken with them or not at all.
  await dynamo().send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Put: {
            TableName: executions.name,
            Item: execution,
            ConditionExpression: 'attribute_not_exists(id)',
          },
        },
        { Put: { TableName: requests.name, Item: request } },
        ...(options.guard ? [options.guard] : []),
        ...(options.also ?? []),
      ],
    }),
  );
  if (options.wake !== false) await wakeDispatcher(`${op.kind} ${id} queued`);
  return publicExecution(execution);
}
