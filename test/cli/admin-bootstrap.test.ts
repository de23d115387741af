/**
 * `lifeboat admin bootstrap`: the real command, with AWS credentials and the SDK's endpoint
 * variable pointing at DynamoDB Local, finds the stack's users and tokens tables by the names
 * CloudFormation gives them, writes the first admin and prints its token once; the token works
 * against the real API handler. A second run is refused while an admin exists; --force gives an
 * admin a new token; nobody is promoted; bad usage is exit 2.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '#functions/api/auth.ts';
import { tokens } from '#functions/repo/tokens.ts';
import { users } from '#functions/repo/users.ts';
import { TABLES } from '#functions/tables.ts';
import { createTableInput } from '#local/dynamodb.ts';
import { call } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal, useLocalCredentials } from '../helpers/dynamodb-local.ts';
import { runCli } from './run-cli.ts';

/** Table names as CloudFormation makes them for stack `Lifeboat` (`<stack>-<logicalId>-<suffix>`). */
const CFN = {
  users: 'Lifeboat-TablesUsers9A1B2C3D-1Q2W3E4R5T6Y',
  tokens: 'Lifeboat-TablesTokensF00DBABE-7U8I9O0P1A2S',
};

let db: DynamoDbLocal;
let env: Record<string, string>;

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  db = await startDynamoDbLocal();
  const key = useLocalCredentials();
  const client = new DynamoDBClient({ endpoint: db.endpoint, region: process.env.AWS_REGION });
  for (const kind of ['users', 'tokens'] as const) {
    const spec = TABLES.find((t) => t.key === kind);
    if (!spec) throw new Error(kind);
    await client.send(new CreateTableCommand(createTableInput(spec, CFN[kind])));
  }
  client.destroy();
  // The API handler of this process reads the same tables the command writes.
  process.env.TABLE_USERS = CFN.users;
  process.env.TABLE_TOKENS = CFN.tokens;
  // What an operator's shell would hold: credentials and a region; the endpoint only for the test.
  env = {
    AWS_ACCESS_KEY_ID: key.accessKeyId,
    AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
  };
}, 120_000);
afterAll(async () => {
  await db?.stop();
});

const bootstrap = (...args: string[]) => runCli(['admin', 'bootstrap', ...args], { env });

describe('lifeboat admin bootstrap', () => {
  it('writes the first admin into the stack tables and prints its working token once', async () => {
    const result = await bootstrap('--stack', 'Lifeboat');
    expect(result.exitCode, result.stderr).toBe(0);
    const token = result.stdout;
    expect(token).toMatch(/^lb_[A-Za-z0-9_-]{43}$/);
    expect(result.stderr).toMatch(/^admin admin \(token [0-9a-f]{16}\): shown only now/);
    expect(result.stderr).not.toContain(token);
    const me = await call('GET', '/users/admin', { token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ name: 'admin', group: 'admin', admin: true });
    expect((await call('GET', '/users', { token })).status).toBe(200);
    const stored = JSON.stringify([await users.list(), await tokens.list()]);
    expect(stored).not.toContain(token);
    expect(stored).toContain(hashToken(token));
  });

  it('refuses while an admin exists, and writes nothing', async () => {
    const before = (await tokens.list()).length;
    const again = await bootstrap('--stack', 'Lifeboat', '--name', 'ops');
    expect(again.exitCode).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(
      'lifeboat: the control plane has an admin already (admin): an admin makes more with `lifeboat user create NAME --admin`; --force gives the named admin a new token',
    );
    expect((await tokens.list()).length).toBe(before);
    expect(await users.find('ops')).toBeUndefined();
  });

  it('--force gives an existing admin a new token (the old one keeps working), or makes the named admin', async () => {
    const first = (await tokens.list()).find((t) => t.user === 'admin');
    const forced = await bootstrap('--stack', 'Lifeboat', '--force', '--json', '--expires', '1d');
    expect(forced.exitCode, forced.stderr).toBe(0);
    const made = JSON.parse(forced.stdout);
    expect(made).toEqual({
      name: 'admin',
      group: 'admin',
      admin: true,
      createdAt: expect.any(String),
      token: expect.stringMatching(/^lb_/),
      tokenId: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect((await call('GET', '/users', { token: made.token })).status).toBe(200);
    const record = await tokens.find(hashToken(made.token));
    expect(record?.name).toBe('bootstrap');
    expect(Date.parse(record?.expiresAt ?? '') - Date.parse(record?.createdAt ?? '')).toBe(86_400_000);
    expect((await tokens.find(first?.hash ?? ''))?.revokedAt).toBeUndefined();

    const ops = await bootstrap(
      '--users-table',
      CFN.users,
      '--tokens-table',
      CFN.tokens,
      '--force',
      '--name',
      'ops',
    );
    expect(ops.exitCode, ops.stderr).toBe(0);
    expect((await call('GET', '/users/ops', { token: ops.stdout })).body).toMatchObject({ admin: true });
  });

  it('never promotes a user who is no admin', async () => {
    const admin = (await bootstrap('--stack', 'Lifeboat', '--force')).stdout;
    expect((await call('POST', '/users', { token: admin, body: { name: 'alice' } })).status).toBe(201);
    const result = await bootstrap('--stack', 'Lifeboat', '--force', '--name', 'alice');
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe('lifeboat: alice exists and is no admin: bootstrap another name (--name)');
    expect((await users.find('alice'))?.role).toBe('user');
  });

  it.each([
    [[], /give --stack NAME/, 2],
    [['--users-table', CFN.users], /give both --users-table and --tokens-table/, 2],
    [['--stack', 'no such'], /stack name/, 2],
    [['--stack', 'Lifeboat', '--name', 'a/b'], /name/, 2],
    [['--stack', 'Lifeboat', '--region', 'mars'], /AWS region/, 2],
    [
      ['--stack', 'Other'],
      /no users table of stack Other .*--users-table \(the stack output UsersTableName\)/,
      1,
    ],
  ] as const)('%j: one line on stderr, exit %s', async (args, message, code) => {
    const result = await bootstrap(...args);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.exitCode).toBe(code);
  });
});
