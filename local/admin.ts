/**
 * The admin API token of local mode: generated once, kept only in `<home>/endpoint.json` (0600);
 * the tokens table holds nothing but its sha256, as for every user's token. And the local runner's
 * one-time enrollment token, handed to it in its environment only.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
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

/** What the admin's local-mode token is called in `lifeboat token list`. */
export const LOCAL_ADMIN_TOKEN_NAME = 'local mode';

function tableOf(key: 'users' | 'tokens'): string {
  const spec = TABLES.find((t) => t.key === key);
  if (!spec) throw new Error(`functions/tables.ts has no ${key} table`);
  return localTableName(spec);
}

/**
 * Make user `admin` (role admin, group admin) hold the token hashing to `hash`, as a record of
 * the tokens table named {@link LOCAL_ADMIN_TOKEN_NAME}; leaves it alone when it already does.
 * The admin's earlier local-mode token stops working (as when endpoint.json is made again), and
 * so does a token hash kept on the user record by versions before the tokens table; tokens the
 * admin made with `lifeboat token create` stay (the user keeps its uid).
 */
export async function ensureAdmin(
  client: DynamoDBClient,
  hash: string,
): Promise<'created' | 'updated' | 'unchanged'> {
  const usersTable = tableOf('users');
  const tokensTable = tableOf('tokens');
  const [existing, token] = await Promise.all([
    client.send(
      new GetItemCommand({ TableName: usersTable, Key: { name: { S: 'admin' } }, ConsistentRead: true }),
    ),
    client.send(
      new GetItemCommand({ TableName: tokensTable, Key: { hash: { S: hash } }, ConsistentRead: true }),
    ),
  ]);
  const uid = existing.Item?.uid?.S ?? randomBytes(12).toString('hex');
  const current =
    existing.Item?.role?.S === 'admin' &&
    existing.Item.tokenHash === undefined &&
    token.Item?.user?.S === 'admin' &&
    token.Item.uid?.S === uid &&
    token.Item.revokedAt === undefined &&
    token.Item.expiresAt === undefined;
  if (current) return 'unchanged';
  const now = new Date().toISOString();
  await client.send(
    new PutItemCommand({
      TableName: usersTable,
      Item: {
        name: { S: 'admin' },
        group: { S: 'admin' },
        role: { S: 'admin' },
        uid: { S: uid },
        createdAt: { S: existing.Item?.createdAt?.S ?? now },
      },
    }),
  );
  await client.send(
    new PutItemCommand({
      TableName: tokensTable,
      Item: {
        hash: { S: hash },
        id: { S: randomBytes(8).toString('hex') },
        user: { S: 'admin' },
        uid: { S: uid },
        name: { S: LOCAL_ADMIN_TOKEN_NAME },
        createdAt: { S: now },
      },
    }),
  );
  const mine = await client.send(
    new QueryCommand({
      TableName: tokensTable,
      IndexName: 'byUser',
      KeyConditionExpression: '#u = :u',
      ExpressionAttributeNames: { '#u': 'user' },
      ExpressionAttributeValues: { ':u': { S: 'admin' } },
    }),
  );
  for (const old of mine.Items ?? []) {
    if (old.name?.S !== LOCAL_ADMIN_TOKEN_NAME || old.hash?.S === undefined || old.hash.S === hash) continue;
    await client.send(new DeleteItemCommand({ TableName: tokensTable, Key: { hash: { S: old.hash.S } } }));
  }
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
  const TableName = tableOf('users');
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
