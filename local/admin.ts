/**
 * The admin API token of local mode: generated once, kept only in `<home>/endpoint.json` (0600);
 * the users table holds nothing but its sha256, as for every user.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { TABLES } from '#functions/tables.ts';
import { localTableName } from './dynamodb.ts';

/** A new API token (256 random bits). */
export function newToken(): string {
  return `lb_${randomBytes(32).toString('base64url')}`;
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
