/**
 * The Step Functions shim over a small hand-written definition (this checks the shim, not the
 * CDK app): real SFN SDK client over HTTP, Lambda and SQS replaced by in-test stand-ins.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newLocalCredentials } from '#local/credentials.ts';
import { FunctionError } from '#local/functions.ts';
import { LocalStepFunctions } from '#local/stepfunctions/runtime.ts';
import { startStepFunctionsServer } from '#local/stepfunctions/server.ts';
import { TaskTokens } from '#local/stepfunctions/task-tokens.ts';

const MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:Fixture';
const catchAll = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Failed' }];
const FIXTURE = {
  StartAt: 'Admit',
  States: {
    Admit: {
      Type: 'Task',
      Resource: 'arn:aws:lambda:us-east-1:000000000000:function:lifeboat-Admit',
      ResultPath: '$.admit',
      Next: 'RunOnHost',
      Catch: catchAll,
    },
    RunOnHost: {
      Type: 'Task',
      Resource: 'arn:aws:states:::sqs:sendMessage.waitForTaskToken',
      Parameters: {
        'QueueUrl.$': '$.admit.queueUrl',
        MessageBody: {
          'taskId.$': "States.Format('{}/RunOnHost', $$.Execution.Name)",
          'token.$': '$$.Task.Token',
          'vmId.$': '$.vmId',
        },
      },
      HeartbeatSeconds: 1,
      TimeoutSeconds: 3,
      ResultPath: '$.host',
      Next: 'Done',
      Catch: catchAll,
    },
    Done: { Type: 'Succeed' },
    Failed: { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' },
  },
} as unknown as StateMachineDefinition;

interface Sent {
  QueueUrl: string;
  body: { taskId: string; token: string; vmId: number };
}

let home: string;
let sfn: SFNClient;
let runtime: LocalStepFunctions;
let stopServer: () => Promise<void>;
const tokens = new TaskTokens();
const sent: Sent[] = [];
let waiters: ((m: Sent) => void)[] = [];

async function nextMessage(): Promise<Sent> {
  const queued = sent.shift();
  if (queued) return queued;
  return new Promise((resolve) => waiters.push(resolve));
}

async function start(name: string, input: Record<string, unknown>): Promise<string> {
  const out = await sfn.send(
    new StartExecutionCommand({ stateMachineArn: MACHINE_ARN, name, input: JSON.stringify(input) }),
  );
  return out.executionArn ?? '';
}

async function finished(executionArn: string) {
  await runtime.settledOf(executionArn);
  return sfn.send(new DescribeExecutionCommand({ executionArn }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'lifeboat-sfn-'));
  const services = {
    tokens,
    invoke: async (name: string, event: unknown) => {
      const input = event as { vmId: number };
      if (input.vmId === 404) throw new FunctionError('NotFound', `VM ${input.vmId} does not exist`);
      return { queueUrl: 'http://127.0.0.1:1/000000000000/lifeboat-host-1', fn: name };
    },
    sendMessage: async (m: { QueueUrl: string; MessageBody: string }) => {
      const message = { QueueUrl: m.QueueUrl, body: JSON.parse(m.MessageBody) };
      const waiter = waiters.shift();
      if (waiter) waiter(message);
      else sent.push(message);
      return { MessageId: 'm-1' };
    },
  };
  runtime = new LocalStepFunctions(
    [{ name: 'Fixture', arn: MACHINE_ARN, definition: FIXTURE }],
    services,
    join(home, 'executions.json'),
  );
  const credentials = newLocalCredentials();
  const server = await startStepFunctionsServer(runtime, tokens, 0, credentials);
  stopServer = server.stop;
  sfn = new SFNClient({ endpoint: server.endpoint, region: 'us-east-1', credentials });
});

afterAll(async () => {
  waiters = [];
  await runtime.close();
  await stopServer();
  // An execution aborted by close() settles a moment later and saves the store once more (50 ms
  // timer): retry while that write lands in the folder being removed (ENOTEMPTY on a busy machine).
  await rm(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

describe('Step Functions shim', () => {
  it('runs to SUCCEEDED when the host answers SendTaskSuccess, with the real token in the message', async () => {
    const arn = await start('exec-ok', { vmId: 3 });
    expect(arn).toBe('arn:aws:states:us-east-1:000000000000:execution:Fixture:exec-ok');
    const message = await nextMessage();
    expect(message.QueueUrl).toBe('http://127.0.0.1:1/000000000000/lifeboat-host-1');
    expect(message.body.taskId).toBe('exec-ok/RunOnHost');
    expect(message.body.vmId).toBe(3);
    expect(message.body.token).toMatch(/^lbtt-/);
    await sfn.send(
      new SendTaskSuccessCommand({ taskToken: message.body.token, output: '{"backupId":"b1"}' }),
    );
    const done = await finished(arn);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output ?? '{}').host).toEqual({ backupId: 'b1' });
    // The task is closed: answering it again is what AWS calls a timed-out task.
    await expect(
      sfn.send(new SendTaskSuccessCommand({ taskToken: message.body.token, output: '{}' })),
    ).rejects.toMatchObject({ name: 'TaskTimedOut' });
  });

  it('reports SendTaskFailure as the execution error and cause', async () => {
    const arn = await start('exec-fail', { vmId: 4 });
    const message = await nextMessage();
    await sfn.send(
      new SendTaskFailureCommand({
        taskToken: message.body.token,
        error: 'DiskGone',
        cause: 'disk vda vanished',
      }),
    );
    const done = await finished(arn);
    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('DiskGone');
    expect(done.cause).toBe('disk vda vanished');
  });

  it('turns a Lambda error into Error = its name and Cause = Lambda JSON', async () => {
    const arn = await start('exec-lambda-error', { vmId: 404 });
    const done = await finished(arn);
    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('NotFound');
    expect(JSON.parse(done.cause ?? '')).toEqual({
      errorType: 'NotFound',
      errorMessage: 'VM 404 does not exist',
    });
  });

  it('fails with States.HeartbeatTimeout when the host stays silent', async () => {
    const t0 = Date.now();
    const arn = await start('exec-silent', { vmId: 5 });
    await nextMessage();
    const done = await finished(arn);
    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('States.HeartbeatTimeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it('keeps a heartbeating task alive past HeartbeatSeconds', async () => {
    const arn = await start('exec-heartbeat', { vmId: 6 });
    const message = await nextMessage();
    for (let i = 0; i < 4; i++) {
      await sleep(500);
      await sfn.send(new SendTaskHeartbeatCommand({ taskToken: message.body.token }));
    }
    // 2 s have passed, twice HeartbeatSeconds: still running.
    expect((await sfn.send(new DescribeExecutionCommand({ executionArn: arn }))).status).toBe('RUNNING');
    await sfn.send(new SendTaskSuccessCommand({ taskToken: message.body.token, output: '{}' }));
    expect((await finished(arn)).status).toBe('SUCCEEDED');
  });

  it('fails with States.Timeout after TimeoutSeconds even with heartbeats', async () => {
    const arn = await start('exec-timeout', { vmId: 7 });
    const message = await nextMessage();
    const beat = setInterval(() => {
      sfn.send(new SendTaskHeartbeatCommand({ taskToken: message.body.token })).catch(() => {});
    }, 400);
    const done = await finished(arn);
    clearInterval(beat);
    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('States.Timeout');
  });

  it('StopExecution aborts: ABORTED, and the token is closed', async () => {
    const arn = await start('exec-stop', { vmId: 8 });
    const message = await nextMessage();
    await sfn.send(new StopExecutionCommand({ executionArn: arn, error: 'Stopped', cause: 'by test' }));
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    expect(described.status).toBe('ABORTED');
    await expect(
      sfn.send(new SendTaskSuccessCommand({ taskToken: message.body.token, output: '{}' })),
    ).rejects.toMatchObject({ name: 'TaskTimedOut' });
  });

  it('answers AWS errors for bad calls', async () => {
    await expect(sfn.send(new SendTaskHeartbeatCommand({ taskToken: 'nonsense' }))).rejects.toMatchObject({
      name: 'InvalidToken',
    });
    await expect(
      sfn.send(
        new DescribeExecutionCommand({
          executionArn: `${MACHINE_ARN}:nope`.replace('stateMachine', 'execution'),
        }),
      ),
    ).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });
    await expect(
      sfn.send(new StartExecutionCommand({ stateMachineArn: `${MACHINE_ARN}x`, name: 'a' })),
    ).rejects.toMatchObject({ name: 'StateMachineDoesNotExist' });
    await expect(
      sfn.send(
        new StartExecutionCommand({ stateMachineArn: MACHINE_ARN, name: 'exec-ok', input: '{"vmId":3}' }),
      ),
    ).rejects.toMatchObject({ name: 'ExecutionAlreadyExists' });
  });

  it('lists executions newest first and keeps them across a restart', async () => {
    const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn: MACHINE_ARN }));
    const names = (listed.executions ?? []).map((e) => e.name);
    expect(names[0]).toBe('exec-stop');
    expect(names).toContain('exec-ok');
    await runtime.close();
    const reloaded = new LocalStepFunctions(
      [{ name: 'Fixture', arn: MACHINE_ARN, definition: FIXTURE }],
      { tokens, invoke: async () => ({}), sendMessage: async () => ({}) },
      join(home, 'executions.json'),
    );
    await reloaded.load();
    const ok = reloaded.describe('arn:aws:states:us-east-1:000000000000:execution:Fixture:exec-ok');
    expect(ok.status).toBe('SUCCEEDED');
    expect(reloaded.describe(ok.executionArn.replace('exec-ok', 'exec-fail')).error).toBe('DiskGone');
  });
});
