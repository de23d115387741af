/**
 * Starts the SQS emulator in this process on a free port, the way local mode does
 * (`local/sqs.ts`: fauxqs behind a loopback proxy that takes only requests signed with the local
 * key, queue URLs on 127.0.0.1, the shared host dead-letter queue created), and points the SDK
 * at it (AWS_ENDPOINT_URL_SQS, AWS_ACCESS_KEY_ID, HOST_DEAD_LETTER_QUEUE_ARN). For integration
 * tests of code that creates or uses host queues.
 */
import { join } from 'node:path';
import { ensureHostDeadLetterQueue, startSqs } from '#local/sqs.ts';
import { resetClients, sqsClient } from '#platform/aws.ts';
import { socketFolder, useLocalCredentials } from './dynamodb-local.ts';

/** A running SQS emulator. */
export interface LocalSqs {
  endpoint: string;
  stop(): Promise<void>;
}

/** Start the emulator, create the host dead-letter queue and set the variables naming them. */
export async function startLocalSqs(): Promise<LocalSqs> {
  const credentials = useLocalCredentials();
  const sockets = await socketFolder();
  const sqs = await startSqs({
    // 0: the proxy takes a free port itself, so no other test can grab it in between.
    port: 0,
    socket: join(sockets.dir, 'sqs.sock'),
    credentials,
    region: process.env.AWS_REGION,
  }).catch(async (err) => {
    await sockets.remove();
    throw err;
  });
  process.env.AWS_ENDPOINT_URL_SQS = sqs.endpoint;
  resetClients();
  process.env.HOST_DEAD_LETTER_QUEUE_ARN = await ensureHostDeadLetterQueue(sqsClient());
  return {
    endpoint: sqs.endpoint,
    stop: async () => {
      await sqs.stop();
      await sockets.remove();
    },
  };
}
