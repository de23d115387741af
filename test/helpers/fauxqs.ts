/**
 * Starts the SQS emulator in this process on a free port, the way local mode does
 * (`local/sqs.ts`: fauxqs with queue URLs on 127.0.0.1, the shared host dead-letter queue
 * created), and points the SDK at it (AWS_ENDPOINT_URL_SQS, HOST_DEAD_LETTER_QUEUE_ARN). For
 * integration tests of code that creates or uses host queues.
 */
import { resetClients, sqsClient } from '#functions/aws.ts';
import { ensureHostDeadLetterQueue, startSqs } from '#local/sqs.ts';
import { freePort, useDummyCredentials } from './dynamodb-local.ts';

/** A running SQS emulator. */
export interface LocalSqs {
  endpoint: string;
  stop(): Promise<void>;
}

/** Start the emulator, create the host dead-letter queue and set the variables naming them. */
export async function startLocalSqs(): Promise<LocalSqs> {
  useDummyCredentials();
  const sqs = await startSqs({ port: await freePort(), region: process.env.AWS_REGION });
  process.env.AWS_ENDPOINT_URL_SQS = sqs.endpoint;
  resetClients();
  process.env.HOST_DEAD_LETTER_QUEUE_ARN = await ensureHostDeadLetterQueue(sqsClient());
  return sqs;
}
