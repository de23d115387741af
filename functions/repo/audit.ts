/**
 * The audit table (core/audit.ts): one write per change request, and the reads of `GET /audit`,
 * each a query of one index, newest first, paginated: by object (byObject), by user (byUser),
 * or day by day (byDay) from the newest day back to `since`. Never a scan.
 */
import { randomBytes } from 'node:crypto';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import {
  type AuditCursor,
  type AuditQuery,
  AuditRecord,
  DEFAULT_AUDIT_RETENTION_DAYS,
  DEFAULT_LIST_DAYS,
  dayOf,
  previousDay,
} from '#core/audit.ts';
import { dynamo } from '#platform/aws.ts';
import { intSetting, tableName } from '../env.ts';

const DAY_MS = 86_400_000;

/**
 * AUDIT_RETENTION_DAYS (CDK context `auditRetentionDays`), default 400: how long DynamoDB's TTL
 * keeps a record.
 */
export function auditRetentionDays(): number {
  return intSetting('AUDIT_RETENTION_DAYS', DEFAULT_AUDIT_RETENTION_DAYS);
}

/** The record of a change answered at `now` (fields as core/audit.ts AuditRecord). */
export function auditRecord(
  fields: Omit<AuditRecord, 'id' | 'day' | 'at' | 'expiresAt'>,
  now = Date.now(),
): AuditRecord {
  const at = new Date(now).toISOString();
  return AuditRecord.parse({
    ...fields,
    id: `${at}#${randomBytes(8).toString('hex')}`,
    day: dayOf(at),
    at,
    expiresAt: Math.ceil(now / 1000) + auditRetentionDays() * 86_400,
  });
}

/** Writes one record (unconditional: its id is new). */
export async function writeAudit(record: AuditRecord): Promise<void> {
  await dynamo().send(new PutCommand({ TableName: tableName('audit'), Item: AuditRecord.parse(record) }));
}

/** One page of records, newest first, and the cursor of the next page (undefined at the end). */
export interface AuditPage {
  items: AuditRecord[];
  next?: AuditCursor;
}

/** Day partitions one page visits at most (each an empty query when nothing happened that day). */
const MAX_DAYS_PER_PAGE = 62;

/**
 * The records matching `query` (user, object, since), newest first: at most `limit`, and where
 * the next page starts. `cursor` continues a page this function answered.
 */
export async function queryAudit(
  query: Pick<AuditQuery, 'user' | 'object' | 'since' | 'limit'>,
  cursor: AuditCursor = {},
  now = Date.now(),
): Promise<AuditPage> {
  // Nothing older than the retention exists (bar TTL's lag): no need to look further back.
  const oldest = new Date(now - auditRetentionDays() * DAY_MS).toISOString();
  const since = query.since && query.since > oldest ? query.since : undefined;
  if (query.object !== undefined) {
    return indexPage('byObject', 'object', query.object, since ?? oldest, query, cursor);
  }
  if (query.user !== undefined)
    return indexPage('byUser', 'user', query.user, since ?? oldest, query, cursor);
  return dayPages(
    since ?? new Date(now - DEFAULT_LIST_DAYS * DAY_MS).toISOString(),
    query.limit,
    cursor,
    now,
  );
}

/** One query of `index`'s partition `value`, from `since` on; with both filters, the user's. */
async function indexPage(
  index: 'byObject' | 'byUser',
  attribute: 'object' | 'user',
  value: string,
  since: string,
  query: Pick<AuditQuery, 'user' | 'object' | 'limit'>,
  cursor: AuditCursor,
): Promise<AuditPage> {
  const byUserToo = index === 'byObject' && query.user !== undefined;
  const out = await dynamo().send(
    new QueryCommand({
      TableName: tableName('audit'),
      IndexName: index,
      KeyConditionExpression: '#k = :k AND #at >= :since',
      ...(byUserToo ? { FilterExpression: '#u = :u' } : {}),
      ExpressionAttributeNames: { '#k': attribute, '#at': 'at', ...(byUserToo ? { '#u': 'user' } : {}) },
      ExpressionAttributeValues: { ':k': value, ':since': since, ...(byUserToo ? { ':u': query.user } : {}) },
      ScanIndexForward: false,
      Limit: query.limit,
      ExclusiveStartKey: cursor.key,
    }),
  );
  const items = (out.Items ?? []).map((raw) => AuditRecord.parse(raw));
  return { items, ...(out.LastEvaluatedKey ? { next: { key: stringKey(out.LastEvaluatedKey) } } : {}) };
}

/** Day partitions from the cursor's (or today) back to `since`'s day, until `limit` records. */
async function dayPages(since: string, limit: number, cursor: AuditCursor, now: number): Promise<AuditPage> {
  const items: AuditRecord[] = [];
  const last = dayOf(since);
  let day = cursor.day ?? dayOf(new Date(now).toISOString());
  let start = cursor.key;
  for (let visited = 0; day >= last; visited++) {
    if (visited === MAX_DAYS_PER_PAGE) return { items, next: { day } };
    const out = await dynamo().send(
      new QueryCommand({
        TableName: tableName('audit'),
        IndexName: 'byDay',
        KeyConditionExpression: '#d = :d AND #at >= :since',
        ExpressionAttributeNames: { '#d': 'day', '#at': 'at' },
        ExpressionAttributeValues: { ':d': day, ':since': since },
        ScanIndexForward: false,
        Limit: limit - items.length,
        ExclusiveStartKey: start,
      }),
    );
    for (const raw of out.Items ?? []) items.push(AuditRecord.parse(raw));
    start = undefined;
    if (out.LastEvaluatedKey) {
      if (items.length >= limit) return { items, next: { day, key: stringKey(out.LastEvaluatedKey) } };
      start = stringKey(out.LastEvaluatedKey);
      continue;
    }
    const before = previousDay(day);
    if (items.length >= limit) return before >= last ? { items, next: { day: before } } : { items };
    day = before;
  }
  return { items };
}

/** A LastEvaluatedKey of this table: every key attribute is a string. */
function stringKey(key: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(key).map(([name, value]) => [name, String(value)]));
}
