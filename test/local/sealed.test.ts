/**
 * The local stack is sealed (issue 9, item 3): after `localUp` (what `npm start` runs) nothing
 * of it listens beyond loopback, and the endpoints the API does not front (DynamoDB Local, the
 * SQS emulator, the Step Functions shim, the Lambda endpoint) refuse every request not signed
 * with the per-start key written 0600 in the home folder: a forged task or admin user changes
 * nothing. Stopping, or the supervisor's crash, leaves no process behind.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCredentials, readLocalCredentials } from '#local/credentials.ts';
import { localDown } from '#local/down.ts';
import { readPids } from '#local/pids.ts';
import { freeStackPorts } from '#local/ports.ts';
import { localUp } from '#local/up.ts';
import { apiCall, type Connection } from './responder.ts';

type Ports = Awaited<ReturnType<typeof freeStackPorts>>;
type Credentials = { accessKeyId: string; secretAccessKey: string };

const region = 'us-east-1';
let home: string;
let ports: Ports;
let conn: Connection;
let key: LocalCredentials;
let hostQueue: string;

const url = (port: number) => `http://127.0.0.1:${port}`;
const api = (method: string, path: string, body?: unknown) => apiCall(conn, method, path, body);

/** The clients a forger would use, signing with `credentials`; retries off, so a refusal shows at once. */
function clients(credentials: Credentials) {
  const common = { region, credentials, maxAttempts: 1 };
  return {
    ddb: new DynamoDBClient({ ...common, endpoint: url(ports.dynamodb) }),
    sqs: new SQSClient({ ...common, endpoint: url(ports.sqs) }),
    sfn: new SFNClient({ ...common, endpoint: url(ports.stepfunctions) }),
    lambda: new LambdaClient({ ...common, endpoint: url(ports.lambda) }),
    destroy() {
      for (const c of [this.ddb, this.sqs, this.sfn, this.lambda]) c.destroy();
    },
  };
}

/** The SDK error a promise rejects with (its name and HTTP status), or 'resolved'. */
async function refusal(p: Promise<unknown>): Promise<{ name: string; status?: number } | 'resolved'> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    const e = err as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
}

/** A request with no signature at all, as curl would send it. */
async function unsigned(port: number, target: string, body: unknown, path = '/') {
  const res = await fetch(`${url(port)}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': target },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { __type?: string } };
}

/**
 * Every live process, with its parent and command line, from /proc. Zombies are left out: they
 * run nothing and hold nothing (this machine's init reaps orphans late).
 */
function processes(): { pid: number; ppid: number; cmdline: string }[] {
  const out: { pid: number; ppid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppidText] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z' || state === 'X') continue;
      const ppid = Number(ppidText);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      out.push({ pid: Number(entry), ppid, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** `root` and all its descendants. */
function tree(root: number): Set<number> {
  const all = processes();
  const pids = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (!pids.has(p.pid) && pids.has(p.ppid)) {
        pids.add(p.pid);
        grew = true;
      }
    }
  }
  return pids;
}

/** Processes whose command line names this home (the supervisor, DynamoDB Local's JVM, its namespace). */
const ofHome = () => processes().filter((p) => p.cmdline.includes(home) && p.pid !== process.pid);

/** Listening TCP sockets (`ss -ltnpH`): local address, port and the pids holding each. */
function listeners(): { address: string; port: number; pids: number[] }[] {
  const out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const local = line.trim().split(/\s+/)[3] ?? '';
      const colon = local.lastIndexOf(':');
      return {
        address: local.slice(0, colon),
        port: Number(local.slice(colon + 1)),
        pids: [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])),
      };
    });
}

async function until<T>(check: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'lifeboat-sealed-'));
  ports = await freeStackPorts();
  await writeFile(join(home, 'config.json'), JSON.stringify({ ports, runner: false, demo: false }));
  conn = await localUp({ home });
  const host = await api('POST', '/hosts', { name: 'kvm-sealed' });
  expect(host.status).toBeLessThan(300);
  hostQueue = host.body.queueUrl;
  // Read in the tests that need it, so the listening check also runs where there is no key.
  key = await readLocalCredentials(home).catch(() => ({ accessKeyId: 'NONE', secretAccessKey: 'none' }));
}, 180_000);

afterAll(async () => {
  await localDown({ home });
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe('the local stack after localUp', () => {
  it('listens on 127.0.0.1 only: every port of every process it runs', async () => {
    const pids = await readPids(join(home, 'pids.json'));
    expect(pids).toBeDefined();
    const ours = tree(pids?.supervisor ?? -1);
    const sockets = listeners().filter((l) => l.pids.some((pid) => ours.has(pid)));
    expect(sockets.length).toBeGreaterThanOrEqual(5);
    for (const s of sockets) expect(`${s.address}:${s.port}`).toBe(`127.0.0.1:${s.port}`);
    // Each configured port is the stack's, on loopback, and nothing holds it on another address.
    for (const port of Object.values(ports)) {
      const held = listeners().filter((l) => l.port === port);
      expect(held.map((l) => l.address)).toEqual(['127.0.0.1']);
      expect(held[0]?.pids.some((pid) => ours.has(pid))).toBe(true);
    }
  });

  it('writes the per-start key 0600 in the home, and never logs it', async () => {
    const file = join(home, 'local-credentials.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await readFile(file, 'utf8'));
    // The admin's key on top; each principal's (roles, runners) under `principals`.
    expect(Object.keys(saved).sort()).toEqual(['accessKeyId', 'principals', 'secretAccessKey']);
    expect(key.secretAccessKey.length).toBeGreaterThanOrEqual(32);
    const log = await readFile(join(home, 'logs', 'supervisor.log'), 'utf8');
    expect(log).not.toContain(key.secretAccessKey);
    const principals = Object.values(saved.principals) as { secretAccessKey: string }[];
    expect(principals.length).toBeGreaterThan(10);
    for (const p of principals) expect(log).not.toContain(p.secretAccessKey);
  });

  it('refuses a forged task on a host queue (wrong secret, old dummy key, unsigned) and queues nothing', async () => {
    const task = JSON.stringify({ kind: 'restore', taskId: 'forged', toPath: '/root/.ssh/authorized_keys' });
    const wrongSecret = clients({ accessKeyId: key.accessKeyId, secretAccessKey: 'guessed' });
    const dummy = clients({ accessKeyId: 'local', secretAccessKey: 'local' });
    try {
      expect(
        await refusal(
          wrongSecret.sqs.send(new SendMessageCommand({ QueueUrl: hostQueue, MessageBody: task })),
        ),
      ).toEqual({
        name: 'InvalidSignatureException',
        status: 403,
      });
      expect(
        await refusal(dummy.sqs.send(new SendMessageCommand({ QueueUrl: hostQueue, MessageBody: task }))),
      ).toEqual({
        name: 'UnrecognizedClientException',
        status: 403,
      });
    } finally {
      wrongSecret.destroy();
      dummy.destroy();
    }
    const raw = await unsigned(ports.sqs, 'AmazonSQS.SendMessage', {
      QueueUrl: hostQueue,
      MessageBody: task,
    });
    expect(raw.status).toBe(403);
    expect(raw.body.__type).toBe('UnrecognizedClientException');

    const good = clients(key);
    try {
      const attrs = await good.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: hostQueue,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      expect(attrs.Attributes).toEqual({
        ApproximateNumberOfMessages: '0',
        ApproximateNumberOfMessagesNotVisible: '0',
      });
      // Signed with the key, the same calls work (on a queue of the test's own).
      const { QueueUrl } = await good.sqs.send(new CreateQueueCommand({ QueueName: 'sealed-test' }));
      expect(QueueUrl).toBe(`${url(ports.sqs)}/000000000000/sealed-test`);
      await good.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'signed' }));
      const after = await good.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
      );
      expect(after.Attributes?.ApproximateNumberOfMessages).toBe('1');
    } finally {
      good.destroy();
    }
  });

  it('refuses a forged admin user in DynamoDB Local and writes nothing', async () => {
    const forgedToken = 'lb_forged';
    const item = {
      name: { S: 'mallory' },
      group: { S: 'admin' },
      role: { S: 'admin' },
      tokenHash: { S: createHash('sha256').update(forgedToken).digest('hex') },
    };
    const put = { TableName: 'lifeboat-users', Item: item };
    const wrongSecret = clients({ accessKeyId: key.accessKeyId, secretAccessKey: 'guessed' });
    const dummy = clients({ accessKeyId: 'local', secretAccessKey: 'local' });
    try {
      expect(await refusal(wrongSecret.ddb.send(new PutItemCommand(put)))).toEqual({
        name: 'InvalidSignatureException',
        status: 403,
      });
      expect(await refusal(dummy.ddb.send(new PutItemCommand(put)))).toEqual({
        name: 'UnrecognizedClientException',
        status: 403,
      });
    } finally {
      wrongSecret.destroy();
      dummy.destroy();
    }
    const raw = await unsigned(ports.dynamodb, 'DynamoDB_20120810.PutItem', put);
    expect(raw.status).toBe(403);

    const good = clients(key);
    try {
      const got = await good.ddb.send(
        new GetItemCommand({ TableName: 'lifeboat-users', Key: { name: { S: 'mallory' } } }),
      );
      expect(got.Item).toBeUndefined();
      const admin = await good.ddb.send(
        new GetItemCommand({ TableName: 'lifeboat-users', Key: { name: { S: 'admin' } } }),
      );
      expect(admin.Item?.role?.S).toBe('admin');
    } finally {
      good.destroy();
    }
    const forged = await apiCall({ endpoint: conn.endpoint, token: forgedToken }, 'GET', '/hosts');
    expect(forged.status).toBe(401);
  });

  it('refuses StartExecution and SendTaskSuccess to the Step Functions shim without the key', async () => {
    const listing = clients(key);
    const machines = await listing.sfn.send(new ListStateMachinesCommand({}));
    listing.destroy();
    const backupMachine = machines.stateMachines?.find((m) => m.name?.endsWith('Backup'))?.stateMachineArn;
    expect(backupMachine).toBeDefined();
    const wrongSecret = clients({ accessKeyId: key.accessKeyId, secretAccessKey: 'guessed' });
    try {
      expect(
        await refusal(
          wrongSecret.sfn.send(
            new StartExecutionCommand({ stateMachineArn: backupMachine, name: 'forged', input: '{}' }),
          ),
        ),
      ).toEqual({ name: 'InvalidSignatureException', status: 403 });
      // Refused before the token is even looked at: no TaskDoesNotExist, no answer about it.
      expect(
        await refusal(
          wrongSecret.sfn.send(new SendTaskSuccessCommand({ taskToken: 'lbtt-x', output: '{}' })),
        ),
      ).toEqual({ name: 'InvalidSignatureException', status: 403 });
    } finally {
      wrongSecret.destroy();
    }
    const raw = await unsigned(ports.stepfunctions, 'AWSStepFunctions.StartExecution', {
      stateMachineArn: backupMachine,
      name: 'forged-raw',
      input: '{}',
    });
    expect(raw).toEqual({
      status: 403,
      body: {
        __type: 'UnrecognizedClientException',
        message: 'the request is not signed with the local access key (AWS Signature Version 4)',
      },
    });
    const good = clients(key);
    try {
      const runs = await good.sfn.send(new ListExecutionsCommand({ stateMachineArn: backupMachine }));
      expect(runs.executions?.map((e) => e.name)).not.toContain('forged');
      expect(runs.executions?.map((e) => e.name)).not.toContain('forged-raw');
      expect(
        await refusal(good.sfn.send(new SendTaskSuccessCommand({ taskToken: 'lbtt-x', output: '{}' }))),
      ).toMatchObject({ status: 400 });
    } finally {
      good.destroy();
    }
  });

  it('refuses an Invoke of the Lambda endpoint without the key', async () => {
    const invoke = new InvokeCommand({ FunctionName: 'lifeboat-Dispatcher', InvocationType: 'DryRun' });
    const wrongSecret = clients({ accessKeyId: key.accessKeyId, secretAccessKey: 'guessed' });
    try {
      expect(await refusal(wrongSecret.lambda.send(invoke))).toEqual({
        name: 'InvalidSignatureException',
        status: 403,
      });
    } finally {
      wrongSecret.destroy();
    }
    const raw = await unsigned(ports.lambda, '', {}, '/2015-03-31/functions/lifeboat-Dispatcher/invocations');
    expect(raw.status).toBe(403);
    const good = clients(key);
    try {
      expect((await good.lambda.send(invoke)).StatusCode).toBe(204);
    } finally {
      good.destroy();
    }
  });

  it('makes a new key at each start and leaves no process behind when stopped', async () => {
    const before = ofHome();
    expect(before.some((p) => p.cmdline.includes('DynamoDBLocal.jar'))).toBe(true);
    expect(await localDown({ home })).toEqual({ stopped: true });
    expect(ofHome()).toEqual([]);

    await localUp({ home });
    const again = await readLocalCredentials(home);
    expect(again.accessKeyId).not.toBe(key.accessKeyId);
    expect(again.secretAccessKey).not.toBe(key.secretAccessKey);
    expect((await stat(join(home, 'local-credentials.json'))).mode & 0o777).toBe(0o600);
    const old = clients(key);
    const fresh = clients(again);
    try {
      const get = new GetItemCommand({ TableName: 'lifeboat-users', Key: { name: { S: 'admin' } } });
      expect(await refusal(old.ddb.send(get))).toEqual({ name: 'UnrecognizedClientException', status: 403 });
      expect((await fresh.ddb.send(get)).Item?.role?.S).toBe('admin');
    } finally {
      old.destroy();
      fresh.destroy();
    }
    key = again;
  }, 120_000);

  it('leaves no DynamoDB Local behind when the supervisor crashes', async () => {
    const pids = await readPids(join(home, 'pids.json'));
    const jvm = ofHome().find((p) => p.cmdline.includes('DynamoDBLocal.jar'));
    expect(jvm).toBeDefined();
    process.kill(pids?.supervisor ?? -1, 'SIGKILL');
    await until(() => ofHome().length === 0, 20_000);
    expect(processes().some((p) => p.pid === jvm?.pid)).toBe(false);
  }, 60_000);
});
