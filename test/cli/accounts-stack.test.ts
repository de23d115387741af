/**
 * `lifeboat user` and `token` end to end: the real command, over HTTP, through local mode's
 * gateway into the real API handler on DynamoDB Local. An admin makes a user whose printed token
 * works at once; the user makes a short-lived token and a revocable one; each stops working on
 * the next command after it expires or is revoked.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as authorizer } from '#functions/api/authorizer.ts';
import { handler } from '#functions/api/handler.ts';
import { ROUTES } from '#functions/api/routes.ts';
import { startGateway } from '#local/gateway.ts';
import { seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';
import { runCli } from './run-cli.ts';

const ADMIN = 'lb_admin-accounts-stack-0123456789';
let db: DynamoDbLocal;
let gateway: { endpoint: string; stop(): Promise<void> };
let dir: string;

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-accounts-stack-'));
  db = await startDynamoDbLocal();
  await seedUser('admin', ADMIN, 'admin', 'admin');
  const context = { awsRequestId: 'local', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
  gateway = await startGateway({
    port: 0,
    routes: ROUTES,
    authorizer,
    handler: (event: APIGatewayProxyEventV2) => handler(event, context),
  });
});
afterAll(async () => {
  await gateway?.stop();
  await db?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Runs `lifeboat` against the gateway with `token`. */
function as(token: string, args: string[]) {
  return runCli(args, { env: { LIFEBOAT_ENDPOINT: gateway.endpoint, LIFEBOAT_TOKEN: token } });
}

describe('users and tokens through the CLI and the local gateway', () => {
  it('a new user works with the printed token; expired and revoked tokens fail the next command', async () => {
    expect((await as(ADMIN, ['group', 'create', 'web'])).exitCode).toBe(0);
    const created = await as(ADMIN, ['user', 'create', 'alice', '--group', 'web']);
    expect(created.exitCode).toBe(0);
    const alice = created.stdout;
    expect(alice).toMatch(/^lb_[A-Za-z0-9_-]{43}$/);

    // Read from a 0600 file, as the CLI prefers.
    const file = join(dir, 'alice.token');
    await writeFile(file, `${alice}\n`, { mode: 0o600 });
    const me = await runCli(['--json', '--token-file', file, 'user', 'show', 'alice'], {
      env: { LIFEBOAT_ENDPOINT: gateway.endpoint },
    });
    expect(me.exitCode).toBe(0);
    expect(JSON.parse(me.stdout)).toMatchObject({ name: 'alice', group: 'web', admin: false });

    const denied = await as(alice, ['user', 'list']);
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toBe('lifeboat: Forbidden: only admins may list users');

    // Each command takes a second or so: the short token is used right after it is made.
    const short = JSON.parse(
      (await as(alice, ['token', 'create', '--name', 'short', '--expires', '8s', '--json'])).stdout,
    );
    expect((await as(short.token, ['user', 'show', 'alice'])).exitCode).toBe(0);
    const laptop = JSON.parse((await as(alice, ['token', 'create', '--name', 'laptop', '--json'])).stdout);
    expect((await as(laptop.token, ['user', 'show', 'alice'])).exitCode).toBe(0);

    const listed = await as(alice, ['token', 'list']);
    expect(listed.stdout).toMatch(/laptop\s+alice\s+active/);
    expect(listed.stdout).not.toContain(laptop.token);

    expect((await as(alice, ['token', 'revoke', laptop.id])).stdout).toBe(
      `token ${laptop.id} (alice) revoked`,
    );
    const revoked = await as(laptop.token, ['user', 'show', 'alice']);
    expect(revoked.exitCode).toBe(2);
    expect(revoked.stderr).toBe(`lifeboat: token ${laptop.id} was revoked`);

    await new Promise((resolve) => setTimeout(resolve, Date.parse(short.expiresAt) - Date.now() + 50));
    const expired = await as(short.token, ['user', 'show', 'alice']);
    expect(expired.stderr).toBe(`lifeboat: token ${short.id} has expired`);
    expect((await as(alice, ['user', 'show', 'alice'])).exitCode).toBe(0);

    // The group is in use until alice leaves it.
    expect((await as(ADMIN, ['group', 'delete', 'web'])).stderr).toMatch(/group web has members: alice/);
    expect((await as(ADMIN, ['user', 'chgrp', 'alice', 'users'])).exitCode).toBe(0);
    expect((await as(ADMIN, ['group', 'delete', 'web'])).exitCode).toBe(0);
    expect((await as(ADMIN, ['user', 'delete', 'alice'])).exitCode).toBe(0);
    expect((await as(alice, ['user', 'show', 'alice'])).exitCode).toBe(2);
  });
});
