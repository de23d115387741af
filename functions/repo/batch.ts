/**
 * Reading items of several tables in one BatchGetItem (up to 100 keys a call, unprocessed keys
 * asked again), each validated with its table's schema: the dispatcher reads a whole chunk of
 * requests' executions, VMs and hosts in one round trip instead of three per request.
 */
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import type { z } from 'zod';
import { dynamo } from '#platform/aws.ts';
import type { Table } from './table.ts';

type AnyTable = Table<z.ZodType<Record<string, unknown>>>;
type Key = string | number;

/** What to read: per table, the keys (duplicates are read once). */
export interface BatchRead {
  table: AnyTable;
  keys: readonly Key[];
}

const MAX_KEYS = 100;

/**
 * The items found, per table name and key (`found.get(table.name)?.get(key)`); a key with no
 * item is absent. Strongly consistent, as `Table.find`.
 */
export async function batchFind(reads: readonly BatchRead[]): Promise<Map<string, Map<Key, unknown>>> {
  const found = new Map<string, Map<Key, unknown>>();
  const pending: { table: AnyTable; key: Key }[] = [];
  for (const { table, keys } of reads) {
    found.set(table.name, new Map());
    for (const key of new Set(keys)) pending.push({ table, key });
  }
  const byName = new Map(reads.map((r) => [r.table.name, r.table]));
  for (let i = 0; i < pending.length; i += MAX_KEYS) {
    let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> = {};
    for (const { table, key } of pending.slice(i, i + MAX_KEYS)) {
      const entry = request[table.name] ?? { Keys: [], ConsistentRead: true };
      entry.Keys.push({ [table.keyName]: key });
      request[table.name] = entry;
    }
    for (let attempt = 0; Object.keys(request).length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
      const out = await dynamo().send(new BatchGetCommand({ RequestItems: request }));
      for (const [name, items] of Object.entries(out.Responses ?? {})) {
        const table = byName.get(name);
        if (!table) continue;
        for (const raw of items) {
          const item = table.schema.parse(raw) as Record<string, unknown>;
          found.get(name)?.set(item[table.keyName] as Key, item);
        }
      }
      request = (out.UnprocessedKeys ?? {}) as typeof request;
    }
  }
  return found;
}
