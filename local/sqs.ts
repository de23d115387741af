/**
 * The SQS emulator (fauxqs) in process, its state persisted in SQLite under the home folder so
 * host queues and their messages survive a restart.
 */
import { mkdir } from 'node:fs/promises';
import { startFauxqs } from 'fauxqs';

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
