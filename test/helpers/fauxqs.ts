/**
 * Starts the fauxqs SQS emulator in this process on a free port and points the SDK at it
 * (AWS_ENDPOINT_URL_SQS). For integration tests of code that creates or uses host queues.
 */
import { startFauxqs } from 'fauxqs';
import { resetClients } from '#functions/aws.ts';
import { useDummyCredentials } from './dynamodb-local.ts';

/** A running fauxqs. */
export interface LocalSqs {
  endpoint: string;
  stop(): Promise<void>;
}

/** Start fauxqs and set AWS_ENDPOINT_URL_SQS. */
export async function startLocalSqs(): Promise<LocalSqs> {
  useDummyCredentials();
  const server = await startFauxqs({ port: 0, logger: false });
  process.env.AWS_ENDPOINT_URL_SQS = server.address;
  resetClients();
  return { endpoint: server.address, stop: () => server.stop() };
}
