/**
 * Progress of host tasks, kept apart from the execution records: one item per host and
 * execution, keyed `<hostId>/<executionId>`. The runner of a host writes only its own keys (its
 * IAM policy conditions on `dynamodb:LeadingKeys`), so it cannot change any execution's state,
 * nor another host's progress; the API merges a record into the execution it shows only under
 * the key of the host the execution runs on. Items expire by TTL (`expiresAt`).
 */
import { BatchGetCommand, type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { dynamo } from '../aws.ts';
import { tableName } from '../env.ts';

/** What a runner reports of a running task (PROGRESS_ATTRIBUTES of functions/tables.ts). */
export interface ProgressFields {
  phase?: string;
  bytesDone?: number;
  bytesTotal?: number;
}

/** How long a record outlives its last write: longer than any host task may run. */
export const PROGRESS_TTL_SECONDS = 7 * 86_400;

const ProgressRecord = z.object({
  id: z.string(),
  phase: z.string().optional(),
  bytesDone: z.number().int().nonnegative().optional(),
  bytesTotal: z.number().int().nonnegative().optional(),
});

/** The key of an execution's progress on a host. */
export function progressKey(hostId: number, executionId: string): string {
  return `${hostId}/${executionId}`;
}

/**
 * Records `fields` for `executionId` on `hostId` (creates the item on first write), with
 * `client` (a runner's own, signing as its host) or the shared one.
 */
export async function writeProgress(
  hostId: number,
  executionId: string,
  fields: ProgressFields,
  client: DynamoDBDocumentClient = dynamo(),
): Promise<void> {
  const set: Record<string, unknown> = {
    ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
    expiresAt: Math.floor(Date.now() / 1000) + PROGRESS_TTL_SECONDS,
  };
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets = Object.entries(set).map(([field, value], i) => {
    names[`#a${i}`] = field;
    values[`:v${i}`] = value;
    return `#a${i} = :v${i}`;
  });
  await client.send(
    new UpdateCommand({
      TableName: tableName('progress'),
      Key: { id: progressKey(hostId, executionId) },
      UpdateExpression: `SET ${sets.join(', ')}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ReturnValues: 'NONE',
    }),
  );
}

/** The progress records of `keys` (`<hostId>/<executionId>`), by key; absent ones are left out. */
export async function readProgress(keys: readonly string[]): Promise<Map<string, ProgressFields>> {
  const found = new Map<string, ProgressFields>();
  const unique = [...new Set(keys)];
  for (let i = 0; i < unique.length; i += 100) {
    let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead?: boolean }> | undefined = {
      [tableName('progress')]: { Keys: unique.slice(i, i + 100).map((id) => ({ id })), ConsistentRead: true },
    };
    while (request && Object.keys(request).length) {
      const out = await dynamo().send(new BatchGetCommand({ RequestItems: request }));
      for (const raw of out.Responses?.[tableName('progress')] ?? []) {
        const { id, ...fields } = ProgressRecord.parse(raw);
        found.set(id, fields);
      }
      request = out.UnprocessedKeys as typeof request;
      // Throttled keys come back unprocessed: a short pause before asking again.
      if (request && Object.keys(request).length) await new Promise((r) => setTimeout(r, 50));
    }
  }
  return found;
}
