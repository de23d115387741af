/**
 * Executions table: one record per backup or restore, from QUEUED to its end. The stored record
 * also carries `released` (the slot was given back), which the API does not show.
 */

import { z } from 'zod';
import { Execution } from '#core/model.ts';
import { Table } from './table.ts';

/** An execution as stored. */
export const ExecutionRecord = Execution.extend({
  /** Set once by Release, in the same transaction that gives the slot back. */
  released: z.boolean().optional(),
});
export type ExecutionRecord = z.infer<typeof ExecutionRecord>;

/** The executions repository (`Execution 17 does not exist`). */
export const executions = new Table('executions', ExecutionRecord, 'Execution');

/** Every execution, newest first (ids are allocated in order). */
export async function listExecutions(): Promise<ExecutionRecord[]> {
  const items = await executions.list();
  return items.sort((a, b) => Number(b.id) - Number(a.id) || b.createdAt.localeCompare(a.createdAt));
}

/** The execution as users see it (no internal flags). */
export function publicExecution(record: ExecutionRecord): Execution {
  return Execution.parse(record);
}
