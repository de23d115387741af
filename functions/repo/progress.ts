/**
 * Reading the progress of host tasks (written by the runners through platform/progress.ts,
 * which describes the records): the API merges them into the executions it shows.
 */
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { dynamo } from '#platform/aws.ts';
import type { ProgressFields } from '#platform/progress.ts';
import { tableName } from '../env.ts';

const ProgressRecord = z.object({
  id: z.string(),
  phase: z.string().optional(),
  bytesDone: z.number().int().nonnegative().optional(),
  bytesTotal: z.number().int().nonnegative().optional(),
});

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

/**
 * An item of `table` and a progress record, in ONE BatchGetItem (both consistent): what a
 * `--wait` poll of a running execution reads. Either is undefined when absent.
 */
export async function readWithProgress(
  table: string,
  id: string,
  key: string,
): Promise<{ item?: Record<string, unknown>; progress?: ProgressFields }> {
  const progressTable = tableName('progress');
  let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead?: boolean }> | undefined = {
    [table]: { Keys: [{ id }], ConsistentRead: true },
    [progressTable]: { Keys: [{ id: key }], ConsistentRead: true },
  };
  let item: Record<string, unknown> | undefined;
  let progress: ProgressFields | undefined;
  while (request && Object.keys(request).length) {
    const out = await dynamo().send(new BatchGetCommand({ RequestItems: request }));
    item ??= out.Responses?.[table]?.[0];
    const raw = out.Responses?.[progressTable]?.[0];
    if (raw) {
      const { id: _, ...fields } = ProgressRecord.parse(raw);
      progress = fields;
    }
    request = out.UnprocessedKeys as typeof request;
    if (request && Object.keys(request).length) await new Promise((r) => setTimeout(r, 50));
  }
  return { item, progress };
}
