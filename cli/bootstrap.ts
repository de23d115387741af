/**
 * `lifeboat admin bootstrap`: the first admin of a control plane in AWS, where no admin exists
 * yet to call the API with. It uses the operator's own AWS credentials (the SDK's default chain:
 * environment, profile, SSO...) to write one admin user and its token straight into the stack's
 * users and tokens tables, in one transaction, as `POST /users --admin` would; the token is
 * printed once and only its sha256 is stored. It refuses when an admin exists, unless --force
 * (recovery of a lost admin token: a new token for the named admin). Local tests run this very
 * code against DynamoDB Local (AWS_ENDPOINT_URL_DYNAMODB).
 */
import { type DynamoDBClient, paginateListTables } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  paginateScan,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { ADMIN_GROUP } from '#core/accounts.ts';
import { User } from '#core/model.ts';
import { hashToken, newToken } from '#functions/api/auth.ts';
import { newUid, tokenRecord } from '#functions/repo/tokens.ts';
import { CliError, UsageError } from './errors.ts';

/** Where the stack's account tables are. */
export interface AccountTables {
  users: string;
  tokens: string;
}

/**
 * The users and tokens tables of stack `stack`: CloudFormation names a table it creates
 * `<stack>-<logicalId>-<suffix>`, and the CDK app's logical ids start `TablesUsers` and
 * `TablesTokens` (infra/tables.ts). The stack's outputs UsersTableName and TokensTableName name
 * them too, for `--users-table` / `--tokens-table` when this lookup cannot decide.
 */
export async function findAccountTables(client: DynamoDBClient, stack: string): Promise<AccountTables> {
  const names: string[] = [];
  for await (const page of paginateListTables({ client }, {})) names.push(...(page.TableNames ?? []));
  const one = (kind: 'Users' | 'Tokens'): string => {
    const found = names.filter((name) => name.startsWith(`${stack}-Tables${kind}`));
    if (found.length !== 1) {
      throw new CliError(
        `${found.length === 0 ? 'no' : 'more than one'} ${kind.toLowerCase()} table of stack ${stack} in this account and region: ` +
          `give --${kind.toLowerCase()}-table (the stack output ${kind}TableName)`,
        1,
      );
    }
    return found[0] as string;
  };
  return { users: one('Users'), tokens: one('Tokens') };
}

/** What bootstrap made: the admin, the token (shown once) and its public id. */
export interface Bootstrapped {
  name: string;
  group: string;
  admin: true;
  createdAt: string;
  token: string;
  tokenId: string;
  /** True when --force gave an existing admin a new token. */
  existing: boolean;
}

/** The admins of the users table (host principals and users left out). */
async function admins(doc: DynamoDBDocumentClient, table: string): Promise<string[]> {
  const found: string[] = [];
  const pages = paginateScan(
    { client: doc },
    {
      TableName: table,
      ConsistentRead: true,
      FilterExpression: '#r = :a',
      ProjectionExpression: '#n',
      ExpressionAttributeNames: { '#r': 'role', '#n': 'name' },
      ExpressionAttributeValues: { ':a': 'admin' },
    },
  );
  for await (const page of pages) for (const item of page.Items ?? []) found.push(String(item.name));
  return found.sort();
}

/**
 * Writes admin `name` with a new token into `tables`. Refused (exit 1) when an admin exists
 * already, unless `force`: then the named admin gets a new token (made when absent); a named
 * user who is no admin is never promoted here.
 */
export async function bootstrapAdmin(
  client: DynamoDBClient,
  tables: AccountTables,
  options: { name: string; force: boolean; expiresInSeconds?: number | undefined; now?: Date },
): Promise<Bootstrapped> {
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const now = options.now ?? new Date();
  const present = await admins(doc, tables.users);
  if (present.length > 0 && !options.force) {
    throw new CliError(
      `the control plane has an admin already (${present.join(', ')}): an admin makes more with ` +
        '`lifeboat user create NAME --admin`; --force gives the named admin a new token',
      1,
    );
  }
  const existing = (
    await doc.send(
      new GetCommand({ TableName: tables.users, Key: { name: options.name }, ConsistentRead: true }),
    )
  ).Item;
  if (existing && existing.role !== 'admin') {
    throw new UsageError(`${options.name} exists and is no admin: bootstrap another name (--name)`);
  }
  const user = existing
    ? User.parse(existing)
    : User.parse({
        name: options.name,
        group: ADMIN_GROUP,
        role: 'admin',
        uid: newUid(),
        createdAt: now.toISOString(),
      });
  if (!user.uid)
    throw new CliError(`admin ${user.name} predates per-user uids: make a new one with --name`, 1);
  const token = newToken('lb');
  const record = tokenRecord({
    hash: hashToken(token),
    user: user.name,
    uid: user.uid,
    name: 'bootstrap',
    now,
    expiresInSeconds: options.expiresInSeconds,
  });
  try {
    await doc.send(
      new TransactWriteCommand({
        TransactItems: [
          existing
            ? {
                // The admin we read is still that admin (not deleted, made again or demoted).
                ConditionCheck: {
                  TableName: tables.users,
                  Key: { name: user.name },
                  ConditionExpression: '#r = :a AND #u = :uid',
                  ExpressionAttributeNames: { '#r': 'role', '#u': 'uid' },
                  ExpressionAttributeValues: { ':a': 'admin', ':uid': user.uid },
                },
              }
            : {
                // Two bootstraps of one name: one wins.
                Put: {
                  TableName: tables.users,
                  Item: user,
                  ConditionExpression: 'attribute_not_exists(#n)',
                  ExpressionAttributeNames: { '#n': 'name' },
                },
              },
          {
            Put: {
              TableName: tables.tokens,
              Item: record,
              ConditionExpression: 'attribute_not_exists(#h)',
              ExpressionAttributeNames: { '#h': 'hash' },
            },
          },
        ],
      }),
    );
  } catch (err) {
    if (err instanceof Error && err.name === 'TransactionCanceledException') {
      throw new CliError(`${user.name} changed meanwhile (another bootstrap?): run it again`, 1);
    }
    throw err;
  }
  return {
    name: user.name,
    group: user.group,
    admin: true,
    createdAt: user.createdAt,
    token,
    tokenId: record.id,
    existing: existing !== undefined,
  };
}
