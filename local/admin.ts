/**
 * The admin API token of local mode: generated once, kept only in `<home>/endpoint.json` (0600);
 * the users table holds nothing but its sha256, as for every user. And the local runner's
 * one-time enrollment token, handed to it in its environment only.
 */
import { createHash } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { newToken as newApiToken } from '#functions/api/auth.ts';
import { enrollmentName, HOSTS_GROUP, hostPrincipalName } from '#functions/repo/users.ts';
import { TABLES } from '#functions/tables.ts';
import { readIdentity } from '#runner/identity.ts';
import { localTableName } from './dynamodb.ts';

/** A new API token (256 random bits). */
export function newToken(): string {
  return newApiToken('lb');
}

/** sha256 hex of a token: what the API looks tokens up by. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Make user `admin` (role admin, group admin) hold `hash`; leaves it alone when it already does. */
export async function ensureAdmin(
  client: DynamoDBClient,
  hash: string,
): Promise<'created' | 'updated' | 'unchanged'> {
  const spec = TABLES.find((t) => t.key === 'users');
  if (!spec) throw new Error('functions/tables.ts has no users table');
  const TableName = localTableName(spec);
  const existing = await client.send(new GetItemCommand({ TableName, Key: { name: { S: 'admin' } } }));
  if (existing.Item?.tokenHash?.S === hash) return 'unchanged';
  await client.send(
    new PutItemCommand({
      TableName,
      Item: {
        name: { S: 'admin' },
        group: { S: 'admin' },
        role: { S: 'admin' },
        tokenHash: { S: hash },
        createdAt: { S: existing.Item?.createdAt?.S ?? new Date().toISOString() },
      },
    }),
  );
  return existing.Item ? 'updated' : 'created';
}

/** How long the local runner's enrollment token works: it registers within seconds of its start. */
const LOCAL_ENROLL_SECONDS = 3600;

/**
 * The local runner's enrollment, written straight into the users table (as {@link ensureAdmin}
 * does for the admin): when its state folder holds no identity, or one whose credential the
 * table no longer knows (a fresh home, same runner folder), a new one-time token for host
 * `hostName` is recorded and answered, for the runner's environment only. Undefined when the
 * runner's identity is good.
 */
export async function enrollLocalRunner(
  client: DynamoDBClient,
  runner: { stateDir: string; hostName: string },
): Promise<string | undefined> {
  const spec = TABLES.find((t) => t.key === 'users');
  if (!spec) throw new Error('functions/tables.ts has no users table');
  const TableName = localTableName(spec);
  const identity = await readIdentity(runner.stateDir).catch(() => undefined);
  if (identity) {
    const key = { name: { S: hostPrincipalName(identity.hostId) } };
    const principal = await client.send(new GetItemCommand({ TableName, Key: key, ConsistentRead: true }));
    if (principal.Item?.tokenHash?.S === tokenHash(identity.credential)) return undefined;
  }
  const token = newApiToken('lbe');
  const now = new Date();
  await client.send(
    new PutItemCommand({
      TableName,
      Item: {
        name: { S: enrollmentName(runner.hostName) },
        group: { S: HOSTS_GROUP },
        role: { S: 'host' },
        hostName: { S: runner.hostName },
        tokenHash: { S: tokenHash(token) },
        enrollUntil: { S: new Date(now.getTime() + LOCAL_ENROLL_SECONDS * 1000).toISOString() },
        createdAt: { S: now.toISOString() },
      },
    }),
  );
  return token;
}
