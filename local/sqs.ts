/**
 * The SQS emulator (fauxqs) in process, its state persisted in SQLite under the home folder so
 * host queues and their messages survive a restart; and the shared host dead-letter queue the
 * CDK app creates in AWS.
 */
import { mkdir } from 'node:fs/promises';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { HOST_DEAD_LETTER_QUEUE_NAME } from '#infra/config.ts';

/** A running SQS emulator. */
export interface SqsLocal {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * fauxqs names queues `http://sqs.<region>.localhost:<port>/...`, a host name that does not
 * resolve here, and the SDK v3 SQS client sends each request to its QueueUrl's host rather than
 * to AWS_ENDPOINT_URL_SQS. When its configured host is empty fauxqs uses the request's Host
 * header instead (`127.0.0.1:<port>`), which every client can reach; its store class is not
 * exported and defaults the host to `localhost`, so clear it on the prototype's URL builder.
 */
async function useRequestHostInQueueUrls(): Promise<void> {
  const storeUrl = new URL('./sqs/sqsStore.js', import.meta.resolve('fauxqs'));
  const mod = (await import(storeUrl.href)) as {
    SqsStore?: { prototype: { buildQueueUrl?: (...args: unknown[]) => string; host?: string } };
  };
  const proto = mod.SqsStore?.prototype;
  const original = proto?.buildQueueUrl;
  if (!proto || !original || (original as { patched?: boolean }).patched) return;
  const patched = function (this: { host?: string }, ...args: unknown[]) {
    this.host = '';
    return original.apply(this, args);
  };
  (patched as { patched?: boolean }).patched = true;
  proto.buildQueueUrl = patched;
}

/** Start fauxqs on `port` with its SQLite database in `dataDir` (absent: in memory). */
export async function startSqs(opts: { port: number; dataDir?: string; region?: string }): Promise<SqsLocal> {
  if (opts.dataDir) await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  await useRequestHostInQueueUrls();
  const server = await startFauxqs({
    port: opts.port,
    logger: false,
    dataDir: opts.dataDir,
    defaultRegion: opts.region ?? 'us-east-1',
  });
  return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
}

/** A client for the emulator with dummy credentials (usable before the Lambda environment is set). */
export function localSqsClient(endpoint: string, region = 'us-east-1'): SQSClient {
  return new SQSClient({ endpoint, region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
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
