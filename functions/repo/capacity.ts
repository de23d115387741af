/**
 * The capacity table: one sample per datastore `monitor`, kept CAPACITY_RETENTION_DAYS (default
 * 400) by DynamoDB's TTL so a datastore's space can be charted over time. Reads are one query of
 * the byDatastore index, oldest first from `since`: never a scan.
 */
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { MonitorResult } from '#core/contracts/tasks.ts';
import { CapacitySample } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { intSetting, tableName } from '../env.ts';

/** How long a sample is kept unless the deployment says otherwise. */
export const DEFAULT_CAPACITY_RETENTION_DAYS = 400;

/** CAPACITY_RETENTION_DAYS (CDK context `capacityRetentionDays`), default 400. */
export function capacityRetentionDays(): number {
  return intSetting('CAPACITY_RETENTION_DAYS', DEFAULT_CAPACITY_RETENTION_DAYS);
}

/**
 * The sample of a monitor's result measured at `now` (unknown figures left out). Its id names the
 * monitor's execution when there is one: a retried commit of the same answer rewrites its sample
 * instead of adding a second point to the history.
 */
export function capacitySample(
  datastoreId: number,
  result: MonitorResult,
  now: number,
  executionId?: string,
): CapacitySample {
  const at = new Date(now).toISOString();
  const known = Object.fromEntries(Object.entries(result).filter(([, v]) => v !== null));
  return CapacitySample.parse({
    ...known,
    id: `${datastoreId}#${executionId ?? at}`,
    datastoreId,
    at,
    ...(executionId !== undefined && { executionId }),
    expiresAt: Math.ceil(now / 1000) + capacityRetentionDays() * 86_400,
  });
}

/** Writes one sample (a sample of the same id, the same monitor's, is replaced). */
export async function writeCapacitySample(sample: CapacitySample): Promise<void> {
  await dynamo().send(
    new PutCommand({ TableName: tableName('capacity'), Item: CapacitySample.parse(sample) }),
  );
}

/**
 * A datastore's samples from `since` (ISO-8601), oldest first: the newest `limit` of them when
 * there are more (a chart wants the latest; read newest first, then put back in time order).
 */
export async function capacityHistory(
  datastoreId: number,
  since: string,
  limit = 5000,
): Promise<CapacitySample[]> {
  const items: CapacitySample[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: tableName('capacity'),
        IndexName: 'byDatastore',
        KeyConditionExpression: '#d = :d AND #a >= :since',
        ExpressionAttributeNames: { '#d': 'datastoreId', '#a': 'at' },
        ExpressionAttributeValues: { ':d': datastoreId, ':since': since },
        ScanIndexForward: false,
        ExclusiveStartKey: start,
        Limit: limit - items.length,
      }),
    );
    for (const item of page.Items ?? []) items.push(CapacitySample.parse(item));
    start = page.LastEvaluatedKey;
  } while (start && items.length < limit);
  return items.reverse();
}
