/**
 * A runner's host id by its name, read from local mode's hosts table with the admin's key: the
 * tag a runner's principal carries once its host registered (local/iam/keyring.ts).
 */
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { TABLES } from '#functions/tables.ts';
import type { LocalCredentials } from '../credentials.ts';
import type { HostLookup } from './keyring.ts';

/** Looks hosts up through the DynamoDB endpoint `endpoint`; `stop` releases its client. */
export function hostLookup(
  endpoint: string,
  credentials: LocalCredentials,
  region: string,
): { lookup: HostLookup; stop(): void } {
  const client = new DynamoDBClient({ endpoint, region, credentials });
  const spec = TABLES.find((t) => t.key === 'hosts');
  const lookup: HostLookup = async (name) => {
    if (!spec) return undefined;
    let start: Record<string, never> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({
          TableName: `lifeboat-${spec.key}`,
          FilterExpression: '#n = :n',
          ExpressionAttributeNames: { '#n': 'name' },
          ExpressionAttributeValues: { ':n': { S: name } },
          ProjectionExpression: 'id',
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      const id = page.Items?.[0]?.id?.N;
      if (id) return id;
      start = page.LastEvaluatedKey as typeof start;
    } while (start);
    return undefined;
  };
  return { lookup, stop: () => client.destroy() };
}
