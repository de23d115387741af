/**
 * IAM enforced at local mode's own endpoints, with real SDK clients signing with each
 * principal's key: the control plane in this process (the API creates two hosts, A and B), the
 * runner of host A held to its host's queue and progress keys, a step function to the tables
 * its policy names, the schedule role to its target, the API to its schedule group and role.
 * Every refusal is AWS's AccessDeniedException naming the principal, action and resource.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenHash } from '#local/admin.ts';
import { homePaths, loadConfig } from '#local/config.ts';
import { type ControlPlane, startControlPlane } from '#local/control-plane.ts';
import { type LocalCredentials, readPrincipalCredentials } from '#local/credentials.ts';
import { LOCAL_SCHEDULE_ROLE_ARN } from '#local/env.ts';
import { freeStackPorts } from '#local/ports.ts';
import { hostBody } from '../helpers/host-key.ts';
import { apiCall } from './responder.ts';

const R = 'us-east-1';
let home: string;
let plane: ControlPlane;
let ports: Awaited<ReturnType<typeof freeStackPorts>>;
const hosts: Record<'A' | 'B', { id: number; queueUrl: string }> = {} as never;
const clients: { destroy(): void }[] = [];

const track = <T extends { destroy(): void }>(client: T): T => {
  clients.push(client);
  return client;
};
const at = (port: number) => `http://127.0.0.1:${port}`;
const ddbAs = (credentials: LocalCredentials) =>
  track(new DynamoDBClient({ region: R, endpoint: at(ports.dynamodb), credentials }));
const sqsAs = (credentials: LocalCredentials) =>
  track(new SQSClient({ region: R, endpoint: at(ports.sqs), credentials }));

/** The AWS error a call failed with: name, status and message. */
async function refusal(call: Promise<unknown>) {
  try {
    await call;
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('the call was allowed');
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'lifeboat-iam-'));
  ports = await freeStackPorts();
  await writeFile(join(home, 'config.json'), JSON.stringify({ ports, runner: false, demo: false }));
  const token = newToken();
  plane = await startControlPlane({
    paths: homePaths(home),
    config: await loadConfig(home),
    adminTokenHash: tokenHash(token),
    log: () => {},
  });
  const conn = { endpoint: plane.endpoint, token };
  for (const name of ['A', 'B'] as const) {
    const created = await apiCall(conn, 'POST', '/hosts', hostBody(`iam-host-${name.toLowerCase()}`));
    expect(created.status).toBe(201);
    hosts[name] = { id: created.body.id, queueUrl: created.body.queueUrl };
  }
}, 180_000);

afterAll(async () => {
  for (const client of clients) client.destroy();
  await plane?.stop();
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe('the runner of host A, signing with its own key', () => {
  const runnerA = () => plane.iam.credentialsForHost({ name: 'iam-host-a' });

  it("receives from its own queue, and is refused host B's", async () => {
    const sqs = sqsAs(runnerA());
    const own = await sqs.send(new ReceiveMessageCommand({ QueueUrl: hosts.A.queueUrl, WaitTimeSeconds: 0 }));
    expect(own.$metadata.httpStatusCode).toBe(200);
    const other = await refusal(
      sqs.send(new ReceiveMessageCommand({ QueueUrl: hosts.B.queueUrl, WaitTimeSeconds: 0 })),
    );
    expect(other).toMatchObject({ name: 'AccessDeniedException', status: 400 });
    expect(other.message).toContain(
      `is not authorized to perform: sqs:ReceiveMessage on resource: arn:aws:sqs:${R}:000000000000:lifeboat-host-${hosts.B.id}`,
    );
  });

  it('writes its own progress records, never one keyed by host B, and reads no other table', async () => {
    const ddb = ddbAs(runnerA());
    const update = (key: string) =>
      ddb.send(
        new UpdateItemCommand({
          TableName: 'lifeboat-progress',
          Key: { id: { S: key } },
          UpdateExpression: 'SET #p = :p',
          ExpressionAttributeNames: { '#p': 'phase' },
          ExpressionAttributeValues: { ':p': { S: 'copy' } },
          ReturnValues: 'NONE',
        }),
      );
    await update(`${hosts.A.id}/exec-1`);
    expect(await refusal(update(`${hosts.B.id}/exec-1`))).toMatchObject({
      name: 'AccessDeniedException',
      status: 400,
    });
    const put = await refusal(
      ddb.send(
        new PutItemCommand({
          TableName: 'lifeboat-progress',
          Item: { id: { S: `${hosts.B.id}/exec-2` }, phase: { S: 'x' } },
        }),
      ),
    );
    expect(put.message).toContain(
      'dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/lifeboat-progress',
    );
    for (const [table, key] of [
      ['lifeboat-executions', { id: { S: 'exec-1' } }],
      ['lifeboat-datastores', { id: { N: '1' } }],
    ] as const) {
      expect(await refusal(ddb.send(new GetItemCommand({ TableName: table, Key: key })))).toMatchObject({
        name: 'AccessDeniedException',
      });
    }
    // What was refused changed nothing: no progress record under host B's key.
    const admin = ddbAs(plane.credentials);
    const b = await admin.send(
      new GetItemCommand({ TableName: 'lifeboat-progress', Key: { id: { S: `${hosts.B.id}/exec-1` } } }),
    );
    expect(b.Item).toBeUndefined();
  });

  it('makes no call the checks do not know (DynamoDB Local also serves the Streams API)', async () => {
    const ddb = ddbAs(runnerA());
    ddb.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string> };
        request.headers['x-amz-target'] = 'DynamoDBStreams_20120810.ListStreams';
        return next(args);
      },
      { step: 'build' },
    );
    const denied = await refusal(
      ddb.send(new GetItemCommand({ TableName: 'lifeboat-progress', Key: { id: { S: 'x' } } })),
    );
    expect(denied).toMatchObject({ name: 'AccessDeniedException', status: 400 });
  });

  it('starts no execution', async () => {
    const sfn = track(
      new SFNClient({ region: R, endpoint: at(ports.stepfunctions), credentials: runnerA() }),
    );
    const machine = `arn:aws:states:${R}:000000000000:stateMachine:Lifeboat-Backup`;
    expect(
      await refusal(sfn.send(new StartExecutionCommand({ stateMachineArn: machine, input: '{}' }))),
    ).toMatchObject({
      name: 'AccessDeniedException',
    });
  });
});

describe('the key file', () => {
  it("keeps every principal's key, a runner's added after the start included, 0600", async () => {
    const key = plane.iam.credentialsForHost({ name: 'iam-host-late' });
    await expect
      .poll(() => readPrincipalCredentials(home, 'host:iam-host-late').catch(() => undefined))
      .toEqual({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey });
    const api = await readPrincipalCredentials(home, `role:${plane.iam.template?.functionRoles.Api}`);
    expect(api.accessKeyId).toBe(plane.iam.credentialsForFunction('Api').accessKeyId);
    expect((await stat(join(home, 'local-credentials.json'))).mode & 0o777).toBe(0o600);
  });
});

describe('the functions and schedule roles', () => {
  it('a step function cannot write a table its policy does not name', async () => {
    const ddb = ddbAs(plane.iam.credentialsForFunction('AdmitBackup'));
    const denied = await refusal(
      ddb.send(
        new PutItemCommand({
          TableName: 'lifeboat-users',
          Item: { name: { S: 'intruder' }, role: { S: 'admin' } },
        }),
      ),
    );
    expect(denied).toMatchObject({ name: 'AccessDeniedException' });
    expect(denied.message).toMatch(
      /User: arn:aws:sts::000000000000:assumed-role\/AdmitBackupServiceRole\w+\/local is not authorized/,
    );
    await ddb.send(new PutItemCommand({ TableName: 'lifeboat-executions', Item: { id: { S: 'iam-test' } } }));
  });

  it('the schedule role may invoke only its target, the dispatcher', async () => {
    const role =
      plane.iam.template?.roles[
        Object.keys(plane.iam.template?.roles ?? {}).find((id) =>
          id.startsWith('SchedulingVmScheduleRole'),
        ) ?? ''
      ];
    expect(role).toBeDefined();
    const lambda = track(
      new LambdaClient({
        region: R,
        endpoint: at(ports.lambda),
        credentials: plane.iam.credentialsForRole(role?.logicalId ?? ''),
      }),
    );
    const dry = await lambda.send(
      new InvokeCommand({ FunctionName: 'lifeboat-Dispatcher', InvocationType: 'DryRun' }),
    );
    expect(dry.StatusCode).toBe(204);
    const api = await refusal(
      lambda.send(new InvokeCommand({ FunctionName: 'lifeboat-Api', InvocationType: 'DryRun' })),
    );
    expect(api).toMatchObject({ name: 'AccessDeniedException', status: 403 });
    expect(
      await plane.iam.authorizeScheduleTarget(
        LOCAL_SCHEDULE_ROLE_ARN,
        `arn:aws:lambda:${R}:000000000000:function:lifeboat-Api`,
      ),
    ).toBeDefined();
  });

  it('the API creates schedules only in its group, passing only the schedule role', async () => {
    const scheduler = track(
      new SchedulerClient({
        region: R,
        endpoint: process.env.AWS_ENDPOINT_URL_SCHEDULER,
        credentials: plane.iam.credentialsForFunction('Api'),
      }),
    );
    const create = (name: string, group: string, roleArn: string) =>
      scheduler.send(
        new CreateScheduleCommand({
          Name: name,
          GroupName: group,
          ScheduleExpression: 'rate(1 day)',
          FlexibleTimeWindow: { Mode: 'OFF' },
          Target: { Arn: `arn:aws:lambda:${R}:000000000000:function:lifeboat-Dispatcher`, RoleArn: roleArn },
        }),
      );
    expect((await create('iam-ok', 'lifeboat', LOCAL_SCHEDULE_ROLE_ARN)).ScheduleArn).toContain(
      'schedule/lifeboat/iam-ok',
    );
    expect(await refusal(create('iam-default', 'default', LOCAL_SCHEDULE_ROLE_ARN))).toMatchObject({
      name: 'AccessDeniedException',
      status: 403,
    });
    const pass = await refusal(
      create('iam-pass', 'lifeboat', 'arn:aws:iam::000000000000:role/SomethingElse'),
    );
    expect(pass.message).toContain('iam:PassRole on resource: arn:aws:iam::000000000000:role/SomethingElse');
  });
});
