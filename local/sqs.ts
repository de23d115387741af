/**
 * The SQS emulator (fauxqs) in process, its state persisted in SQLite under the home folder so
 * host queues and their messages survive a restart; and the shared host dead-letter queue the
 * CDK app creates in AWS. fauxqs's own `startFauxqs` listens on 0.0.0.0 whatever it is told, so
 * its app listens here on a Unix socket in the home folder instead, behind the loopback proxy
 * that refuses requests not signed with local mode's per-start key (local/signed-proxy.ts).
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';
import { HOST_DEAD_LETTER_QUEUE_NAME } from '#infra/config.ts';
import type { LocalCredentials } from './credentials.ts';
import { MIB } from './http.ts';
import type { LocalIam } from './iam/keyring.ts';
import { type SignedProxy, startSignedProxy } from './signed-proxy.ts';
import { deadlinePollTimer } from './sqs-poll-timer.ts';

/** A running SQS emulator. */
export interface SqsLocal {
  endpoint: string;
  stop(): Promise<void>;
}

/** SendMessageBatch carries up to 1 MiB of messages, JSON-escaped in the request. */
const BODY_LIMIT = 4 * MIB;

interface SqsStoreLike {
  host?: string;
  persistence?: unknown;
  allQueues(): Iterable<{ persistence?: unknown }>;
}
interface SnsStoreLike {
  persistence?: unknown;
}
interface PersistenceLike {
  loadSqsAndSns(sqs: SqsStoreLike, sns: SnsStoreLike): void;
  close(): void;
}
type Stores = NonNullable<NonNullable<Parameters<typeof buildApp>[0]>['stores']>;

/**
 * The store and persistence classes `startFauxqs` wires together, which the package does not
 * export: loaded from its dist folder, next to its entry point.
 */
async function fauxqsInternals() {
  const base = import.meta.resolve('fauxqs');
  const load = async <T>(path: string, name: string): Promise<T> => {
    const mod = (await import(new URL(path, base).href)) as Record<string, unknown>;
    if (typeof mod[name] !== 'function') throw new Error(`fauxqs: ${path} no longer exports ${name}`);
    return mod[name] as T;
  };
  return {
    SqsQueue: await load<{ prototype: object }>('./sqs/sqsStore.js', 'SqsQueue'),
    SqsStore: await load<new () => SqsStoreLike>('./sqs/sqsStore.js', 'SqsStore'),
    SnsStore: await load<new () => SnsStoreLike>('./sns/snsStore.js', 'SnsStore'),
    S3Store: await load<new () => object>('./s3/s3Store.js', 'S3Store'),
    PersistenceManager: await load<new (dir: string) => PersistenceLike>(
      './persistence.js',
      'PersistenceManager',
    ),
  };
}

/**
 * Start fauxqs behind 127.0.0.1:`port` with its SQLite database in `dataDir` (absent: in
 * memory), reached through the Unix socket `socket`.
 */
export async function startSqs(opts: {
  port: number;
  socket: string;
  /** One key, or the key ring whose principals' policies the proxy enforces. */
  credentials: LocalCredentials | LocalIam;
  dataDir?: string;
  region?: string;
}): Promise<SqsLocal> {
  if (opts.dataDir) await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(dirname(opts.socket), { recursive: true, mode: 0o700 });
  const { SqsQueue, SqsStore, SnsStore, S3Store, PersistenceManager } = await fauxqsInternals();
  // Long polls wait on the queue's next deadline, not on a 20 ms loop (local/sqs-poll-timer.ts).
  deadlinePollTimer(SqsQueue);
  const sqsStore = new SqsStore();
  // fauxqs names queues `http://sqs.<region>.<host>:<port>/...`, and the SDK v3 SQS client sends
  // each request to its QueueUrl's host. With no host configured it uses the request's Host
  // header instead, which the proxy passes on: `127.0.0.1:<port>`, reachable by every client.
  sqsStore.host = '';
  const snsStore = new SnsStore();
  // As startFauxqs does: load what was persisted before the stores write through to it.
  const persistence = opts.dataDir ? new PersistenceManager(opts.dataDir) : undefined;
  if (persistence) {
    persistence.loadSqsAndSns(sqsStore, snsStore);
    sqsStore.persistence = persistence;
    snsStore.persistence = persistence;
    for (const queue of sqsStore.allQueues()) queue.persistence = persistence;
  }
  const app = buildApp({
    logger: false,
    defaultRegion: opts.region ?? 'us-east-1',
    stores: { sqsStore, snsStore, s3Store: new S3Store() } as unknown as Stores,
  });
  if (persistence) app.addHook('preClose', () => persistence.close());
  let proxy: SignedProxy | undefined;
  try {
    await rm(opts.socket, { force: true });
    await app.listen({ path: opts.socket });
    await chmod(opts.socket, 0o600);
    proxy = await startSignedProxy({
      name: 'the SQS emulator',
      service: 'sqs',
      port: opts.port,
      socket: opts.socket,
      credentials: opts.credentials,
      bodyLimit: BODY_LIMIT,
    });
  } catch (err) {
    await app.close();
    throw err;
  }
  const front = proxy;
  return {
    endpoint: front.endpoint,
    stop: async () => {
      await front.stop();
      await app.close();
      await rm(opts.socket, { force: true });
    },
  };
}

/** A client for the emulator signing with local mode's per-start key. */
export function localSqsClient(
  endpoint: string,
  credentials: LocalCredentials,
  region = 'us-east-1',
): SQSClient {
  return new SQSClient({ endpoint, region, credentials });
}

/**
 * Create (or find: CreateQueue is idempotent) the dead-letter queue of every host queue, as the
 * CDK app's HostDeadLetters does in AWS, and answer its ARN for `HOST_DEAD_LETTER_QUEUE_ARN`.
 */
export async function ensureHostDeadLetterQueue(client: SQSClient): Promise<string> {
  const created = await client.send(
    new CreateQueueCommand({
      QueueName: HOST_DEAD_LETTER_QUEUE_NAME,
      // 14 days, the stack's retention (fauxqs has no encryption to switch on).
      Attributes: { MessageRetentionPeriod: String(14 * 24 * 3600) },
    }),
  );
  const attrs = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: created.QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = attrs.Attributes?.QueueArn;
  if (!arn) throw new Error(`SQS emulator gave no ARN for ${HOST_DEAD_LETTER_QUEUE_NAME}`);
  return arn;
}
