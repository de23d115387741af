/**
 * Reading the progress of host tasks (written by the runners through platform/progress.ts,
 * which describes the records): the API merges them into the executions it shows.
 */
import { z } from 'zod';
import type { ProgressFields } from '#platform/progress.ts';
import { batchFind } from './batch.ts';
import { Table } from './table.ts';

const ProgressRecord = z.object({
  id: z.string(),
  phase: z.string().optional(),
  bytesDone: z.number().int().nonnegative().optional(),
  bytesTotal: z.number().int().nonnegative().optional(),
});

/** The progress table: records keyed `<hostId>/<executionId>`. */
export const progressRecords = new Table('progress', ProgressRecord, 'Progress record');

/** A record's fields without its key. */
export function progressFields(record: unknown): ProgressFields {
  const { id: _, ...fields } = ProgressRecord.parse(record);
  return fields;
}

/** The progress records of `keys` (`<hostId>/<executionId>`), by key; absent ones are left out. */
export async function readProgress(keys: readonly string[]): Promise<Map<string, ProgressFields>> {
  const found = (await batchFind([{ table: progressRecords, keys }])).get(progressRecords.name);
  return new Map([...(found ?? [])].map(([key, record]) => [String(key), progressFields(record)]));
}
