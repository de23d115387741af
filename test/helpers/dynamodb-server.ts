/**
 * The integration run's one DynamoDB Local, as a process of its own: started by the global setup
 * of test/helpers/dynamodb-local.ts (vitest's setup runs in a module runner that cannot resolve
 * the jar's package), it starts DynamoDB Local in memory behind the signed proxy, prints
 * `{"endpoint", "credentials"}` on one line, and stops it when its stdin closes or on SIGTERM.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newLocalCredentials } from '#local/credentials.ts';
import { startDynamoDb } from '#local/dynamodb.ts';

const credentials = newLocalCredentials();
const sockets = await mkdtemp(join(tmpdir(), 'lb-sock-'));
const db = await startDynamoDb({ port: 0, socket: join(sockets, 'dynamodb.sock'), credentials });
let stopping: Promise<void> | undefined;
const stop = () => {
  stopping ??= (async () => {
    await db.stop().catch(() => {});
    await rm(sockets, { recursive: true, force: true });
    process.exit(0);
  })();
  return stopping;
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The test run ended (or died): its end of the pipe closed.
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ endpoint: db.endpoint, credentials })}\n`);
