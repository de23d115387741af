/**
 * Progress of host tasks, kept apart from the execution records: one item per host and
 * execution, keyed `<hostId>/<executionId>`. The runner of a host writes only its own keys (its
 * IAM policy conditions on `dynamodb:LeadingKeys`), so it cannot change any execution's state,
 * nor another host's progress; the API merges a record into the execution it shows only under
 * the key of the host the execution runs on (functions/repo/progress.ts reads them). Items
 * expire by TTL (`expiresAt`). Here, not in functions/: the runner writes them.
 */
import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from './aws.ts';

/** What a runner reports of a running task (PROGRESS_ATTRIBUTES of functions/tables.ts). */
export interface ProgressFields {
  phase?: string;
  bytesDone?: number;
  bytesTotal?: number;
}

/** How long a record outlives its last write: longer than any host task may run. */
export const PROGRESS_TTL_SECONDS = 7 * 86_400;

/**
 * Name of the progress table: `TABLE_PROGRESS` (its envVar in functions/tables.ts, which a test
 * keeps equal), else local mode's `lifeboat-progress`.
 */
export function progressTableName(): string {
  return process.env.TABLE_PROGRESS || 'lifeboat-progress';
}

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
      TableName: progressTableName(),
      Key: { id: progressKey(hostId, executionId) },
      UpdateExpression: `SET ${sets.join(', ')}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ReturnValues: 'NONE',
    }),
  );
}
