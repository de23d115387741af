/**
 * What "no state changed" means for the hostile API battery: every table of functions/tables.ts
 * (scanned whole), every SQS queue's message counts and the local secret store's files, as one
 * comparable snapshot.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AttributeValue, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, ListQueuesCommand } from '@aws-sdk/client-sqs';
import { TABLES } from '#functions/tables.ts';
import { sqsClient } from '#platform/aws.ts';

/** A value with every object's keys sorted, so two scans of the same data compare equal. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sorted((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** Every item of a table, each as sorted JSON, in sorted order. */
async function scanAll(client: DynamoDBClient, table: string): Promise<string[]> {
  const out: string[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) out.push(JSON.stringify(sorted(item)));
    start = page.LastEvaluatedKey;
  } while (start);
  return out.sort();
}

/** Message counts of every queue of the SQS endpoint. */
async function queueCounts(): Promise<Record<string, string>> {
  const sqs = sqsClient();
  const urls = (await sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [];
  const counts: Record<string, string> = {};
  for (const url of urls.sort()) {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    counts[url] = JSON.stringify(sorted(Attributes));
  }
  return counts;
}

/** Name and content of every file of the local secret store. */
async function secretFiles(dir: string): Promise<Record<string, string>> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const files: Record<string, string> = {};
  for (const name of names.sort()) files[name] = await readFile(join(dir, name), 'utf8');
  return files;
}

/** Everything the API could change, as one value `toEqual` compares. */
export interface StateSnapshot {
  tables: Record<string, string[]>;
  queues: Record<string, string>;
  secrets: Record<string, string>;
}

/** Takes snapshots of the tables named in `tables` (key -> table name; one left out is skipped) and `secretsDir`. */
export function stateSnapshotter(
  endpoint: string,
  tables: Record<string, string | undefined>,
  secretsDir: string,
) {
  const client = new DynamoDBClient({ endpoint, region: process.env.AWS_REGION });
  return {
    async take(): Promise<StateSnapshot> {
      const scanned: Record<string, string[]> = {};
      for (const spec of TABLES) {
        const table = tables[spec.key];
        // A table left out (the audit trail, which refusals write on purpose) is not compared.
        if (table) scanned[spec.key] = await scanAll(client, table);
      }
      return { tables: scanned, queues: await queueCounts(), secrets: await secretFiles(secretsDir) };
    },
    close: () => client.destroy(),
  };
}

/** What changed between two snapshots, one short line per added or removed entry (empty: nothing). */
export function changes(before: StateSnapshot, after: StateSnapshot): string[] {
  const out: string[] = [];
  const short = (text: string) => (text.length > 240 ? `${text.slice(0, 240)}…` : text);
  for (const [table, items] of Object.entries(after.tables)) {
    // The audit trail records refused changes on purpose: it is the one table a refusal writes.
    if (table === 'audit') continue;
    const old = new Set(before.tables[table] ?? []);
    const now = new Set(items);
    for (const item of items) if (!old.has(item)) out.push(`${table} + ${short(item)}`);
    for (const item of old) if (!now.has(item)) out.push(`${table} - ${short(item)}`);
  }
  for (const part of ['queues', 'secrets'] as const) {
    const keys = new Set([...Object.keys(before[part]), ...Object.keys(after[part])]);
    for (const key of keys) {
      if (before[part][key] !== after[part][key])
        out.push(`${part} ${key}: ${short(String(before[part][key]))} -> ${short(String(after[part][key]))}`);
    }
  }
  return out;
}
