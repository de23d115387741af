/**
 * Requests table: operations waiting for the dispatcher. A pending request carries
 * `queue = "pending"` and sits in the `pending` index sorted by `rank`; dispatching removes
 * `queue`, which takes it out of the index.
 */

import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { requestRank } from '#core/ids.ts';
import { ExecutionKind, Id } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { Table } from './table.ts';

/** The queue name of the dispatcher's index. */
export const PENDING = 'pending';

export const Request = z.object({
  /** Same id as its execution. */
  id: z.string().min(1),
  kind: ExecutionKind,
  queue: z.literal(PENDING).optional(),
  rank: z.string(),
  priority: z.number().int().min(0).max(99),
  hostId: Id,
  vmId: Id.optional(),
  datastoreId: Id.optional(),
  imageId: Id.optional(),
  /** The state machine input the dispatcher starts the execution with. */
  input: z.record(z.string(), z.unknown()),
  requestedBy: z.string(),
  createdAt: z.string(),
});
export type Request = z.infer<typeof Request>;

/** The requests repository. */
export const requests = new Table('requests', Request, 'Request');

/** Dispatch order key (core/ids.ts): higher priority first, then oldest first. */
export { requestRank };

/** Pending requests in dispatch order. */
export function pendingRequests(limit?: number): Promise<Request[]> {
  return requests.query(
    'pending',
    { expression: '#q = :q', names: { '#q': 'queue' }, values: { ':q': PENDING } },
    limit,
  );
}

/**
 * Pending requests in dispatch order, a page at a time, so a dispatcher that stops at a full
 * cloud-wide limit reads only the head of a long queue.
 */
export async function* pendingInPages(pageSize = 50): AsyncGenerator<Request[]> {
  let start: Record<string, unknown> | undefined;
  do {
    const out = await dynamo().send(
      new QueryCommand({
        TableName: requests.name,
        IndexName: 'pending',
        KeyConditionExpression: '#q = :q',
        ExpressionAttributeNames: { '#q': 'queue' },
        ExpressionAttributeValues: { ':q': PENDING },
        ExclusiveStartKey: start,
        Limit: pageSize,
      }),
    );
    yield (out.Items ?? []).map((item) => Request.parse(item));
    start = out.LastEvaluatedKey;
  } while (start);
}

/** Take a request out of the pending index. */
export function dequeue(id: string): Promise<Request> {
  return requests.update(id, { dispatchedAt: new Date().toISOString() }, { remove: ['queue'] });
}
