/**
 * Counts of the DynamoDB requests that went through local mode's signed proxy, by caller (the
 * signer's principal: a function's role, a host, admin), by table and by operation. Served in
 * the gateway's `GET /health` (`dynamodbCalls`) so a benchmark can tell where a backup's calls
 * go by the difference of two readings. Names only: no key, no item.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The counts so far (each map: name → requests). */
export interface RequestCounts {
  total: number;
  byCaller: Record<string, number>;
  byTable: Record<string, number>;
  byOperation: Record<string, number>;
  /** By `caller operation` (e.g. `role:ApiRole GetItem`): who reads and who writes. */
  byCallerOperation: Record<string, number>;
  /**
   * Items written, by `caller operation`: one per PutItem, UpdateItem and DeleteItem, one per item of a
   * TransactWriteItems (condition checks included: AWS bills each) or a BatchWriteItem.
   */
  writeItemsByCallerOperation: Record<string, number>;
}

/** The tables a DynamoDB request body names (TableName, or the keys of a batch, or a transaction's). */
export function tablesOf(body: Buffer): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return [];
  }
  if (typeof parsed !== 'object' || parsed === null) return [];
  const input = parsed as {
    TableName?: unknown;
    RequestItems?: unknown;
    TransactItems?: unknown;
  };
  if (typeof input.TableName === 'string') return [input.TableName];
  if (typeof input.RequestItems === 'object' && input.RequestItems !== null)
    return Object.keys(input.RequestItems);
  if (Array.isArray(input.TransactItems)) {
    const names = input.TransactItems.flatMap((item: unknown) =>
      Object.values((item ?? {}) as Record<string, { TableName?: unknown }>)
        .map((op) => op?.TableName)
        .filter((name): name is string => typeof name === 'string'),
    );
    return [...new Set(names)];
  }
  return [];
}

const SINGLE_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);

/** Items a request writes (0 for a read). */
export function writeItemsOf(operation: string, body: Buffer): number {
  if (SINGLE_WRITES.has(operation)) return 1;
  if (operation !== 'TransactWriteItems' && operation !== 'BatchWriteItem') return 0;
  try {
    const input = JSON.parse(body.toString('utf8')) as { TransactItems?: unknown[]; RequestItems?: unknown };
    if (Array.isArray(input.TransactItems)) return input.TransactItems.length;
    return Object.values((input.RequestItems ?? {}) as Record<string, unknown[]>).reduce(
      (n, list) => n + (Array.isArray(list) ? list.length : 0),
      0,
    );
  } catch {
    return 0;
  }
}

/** A counter of requests, fed by the signed proxy. */
export class RequestCounter {
  private readonly counts: RequestCounts = {
    total: 0,
    byCaller: {},
    byTable: {},
    byOperation: {},
    byCallerOperation: {},
    writeItemsByCallerOperation: {},
  };

  constructor(private readonly callerOf: (accessKeyId: string) => string | undefined) {}

  /** Counts one request: its signer's key, its headers (X-Amz-Target) and its body. */
  record(accessKeyId: string | undefined, headers: IncomingHttpHeaders, body: Buffer): void {
    const bump = (map: Record<string, number>, key: string) => {
      map[key] = (map[key] ?? 0) + 1;
    };
    this.counts.total++;
    const caller = (accessKeyId && this.callerOf(accessKeyId)) || 'unknown';
    bump(this.counts.byCaller, caller);
    const target = String(headers['x-amz-target'] ?? '');
    const operation = target.slice(target.indexOf('.') + 1) || 'unknown';
    bump(this.counts.byOperation, operation);
    bump(this.counts.byCallerOperation, `${caller} ${operation}`);
    const items = writeItemsOf(operation, body);
    const key = `${caller} ${operation}`;
    if (items > 0)
      this.counts.writeItemsByCallerOperation[key] =
        (this.counts.writeItemsByCallerOperation[key] ?? 0) + items;
    for (const table of tablesOf(body)) bump(this.counts.byTable, table);
  }

  /** A copy of the counts so far. */
  snapshot(): RequestCounts {
    return structuredClone(this.counts);
  }
}

/** `after - before` of two readings (names with no new request left out). */
export function countsBetween(before: RequestCounts, after: RequestCounts): RequestCounts {
  const diff = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(b)
        .map(([k, v]) => [k, v - (a[k] ?? 0)] as const)
        .filter(([, v]) => v > 0)
        .sort((x, y) => y[1] - x[1]),
    );
  return {
    total: after.total - before.total,
    byCaller: diff(before.byCaller, after.byCaller),
    byTable: diff(before.byTable, after.byTable),
    byOperation: diff(before.byOperation, after.byOperation),
    byCallerOperation: diff(before.byCallerOperation ?? {}, after.byCallerOperation ?? {}),
    writeItemsByCallerOperation: diff(
      before.writeItemsByCallerOperation ?? {},
      after.writeItemsByCallerOperation ?? {},
    ),
  };
}
