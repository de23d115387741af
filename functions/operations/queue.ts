/**
 * Queueing any operation (the API, scheduled actions, jobs and retention all queue through here): allocates the execution id, writes the Execution (QUEUED) and the
 * Request the dispatcher picks up, then wakes the dispatcher.
 */
import type { Execution, User } from '#core/model.ts';
import { allocateId } from '../repo/counters.ts';
import { executions, publicExecution } from '../repo/executions.ts';
import { PENDING, requestRank, requests } from '../repo/requests.ts';
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
 * which queues several operations and wakes it once.
 */
export async function enqueue(
  user: Pick<User, 'name'>,
  op: Operation,
  options: { wake?: boolean } = {},
): Promise<Execution> {
  const id = op.id ?? String(await allocateId('execution'));
  const createdAt = new Date().toISOString();
  const execution = await executions.put(
    {
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
    },
    { expression: 'attribute_not_exists(id)' },
  );
  // The execution first: a request the dispatcher sees always has its execution record.
  await requests.put({
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
  if (options.wake !== false) await wakeDispatcher(`${op.kind} ${id} queued`);
  return publicExecution(execution);
}
