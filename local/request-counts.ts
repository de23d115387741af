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

/** A counter of requests, fed by the signed proxy. */
export class RequestCounter {
  private readonly counts: RequestCounts = { total: 0, byCaller: {}, byTable: {}, byOperation: {} };

  constructor(private readonly callerOf: (accessKeyId: string) => string | undefined) {}

  /** Counts one request: its signer's key, its headers (X-Amz-Target) and its body. */
  record(accessKeyId: string | undefined, headers: IncomingHttpHeaders, body: Buffer): void {
    const bump = (map: Record<string, number>, key: string) => {
      map[key] = (map[key] ?? 0) + 1;
    };
    this.counts.total++;
    bump(this.counts.byCaller, (accessKeyId && this.callerOf(accessKeyId)) || 'unknown');
    const target = String(headers['x-amz-target'] ?? '');
    bump(this.counts.byOperation, target.slice(target.indexOf('.') + 1) || 'unknown');
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
  };
}
