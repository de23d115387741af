/**
 * Local mode's EventBridge Scheduler through the SDK's own SchedulerClient: schedules are
 * created, read and deleted as in AWS, fire their Lambda target with their Input at their time,
 * an at() with ActionAfterCompletion DELETE removes itself, they survive a restart, and a
 * request without the per-start key is refused and changes nothing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  ValidationException,
} from '@aws-sdk/client-scheduler';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CfnTemplate } from '#infra/definition.ts';
import { type LocalCredentials, newLocalCredentials } from '#local/credentials.ts';
import { ScheduleStore } from '#local/scheduler/schedules.ts';
import { startSchedulerServer } from '#local/scheduler/server.ts';
import { templateSchedules } from '#local/scheduler/template.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `at()` text of an instant, UTC, seconds kept (as core/schedule.ts writes it). */
const atOf = (ms: number) => `at(${new Date(ms).toISOString().slice(0, 19)})`;
const TARGET = 'arn:aws:lambda:us-east-1:000000000000:function:lifeboat-Dispatcher';
const ROLE = 'arn:aws:iam::000000000000:role/lifeboat-local-schedule';
/** The stack's tick schedule as `cdk synth` writes it (infra/scheduler.ts). */
const TEMPLATE: CfnTemplate = {
  Resources: {
    DispatcherD4A12972: {
      Type: 'AWS::Lambda::Function',
      Metadata: { 'aws:cdk:path': 'Lifeboat/Dispatcher/Resource' },
    },
    SchedulingDispatchEveryMinute311026BA: {
      Type: 'AWS::Scheduler::Schedule',
      Properties: {
        FlexibleTimeWindow: { Mode: 'OFF' },
        GroupName: 'lifeboat',
        ScheduleExpression: 'rate(1 minute)',
        ScheduleExpressionTimezone: 'Etc/UTC',
        State: 'ENABLED',
        Target: {
          Arn: { 'Fn::GetAtt': ['DispatcherD4A12972', 'Arn'] },
          Input: '{"source":"lifeboat.schedule","reason":"tick"}',
          RetryPolicy: { MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 0 },
          RoleArn: { 'Fn::GetAtt': ['SchedulingDispatchRole29CBCAA7', 'Arn'] },
        },
      },
    },
  },
};

let dir: string;
let credentials: LocalCredentials;
const fired: { arn: string; event: unknown; at: number }[] = [];
let store: ScheduleStore;
let server: Awaited<ReturnType<typeof startSchedulerServer>>;
let client: SchedulerClient;
const file = () => join(dir, 'scheduler', 'schedules.json');

async function start(): Promise<void> {
  store = new ScheduleStore(file(), (arn, event) => fired.push({ arn, event, at: Date.now() }));
  await store.load();
  server = await startSchedulerServer({ port: 0, store, credentials, region: 'us-east-1' });
  client = new SchedulerClient({ region: 'us-east-1', endpoint: server.endpoint, credentials });
}
async function stop(): Promise<void> {
  client.destroy();
  await server.stop();
  await store.close();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-scheduler-'));
  credentials = newLocalCredentials();
  await start();
});
afterAll(async () => {
  await stop();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  fired.length = 0;
});

const create = (name: string, extra: Record<string, unknown> = {}) =>
  client.send(
    new CreateScheduleCommand({
      Name: name,
      GroupName: 'lifeboat',
      ScheduleExpression: 'rate(1 hour)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: TARGET, RoleArn: ROLE, Input: JSON.stringify({ name }) },
      ...extra,
    }),
  );

describe('local EventBridge Scheduler', () => {
  it('an at() schedule fires its target with its Input at its time, then deletes itself', async () => {
    const due = Math.ceil((Date.now() + 1500) / 1000) * 1000;
    const created = await create('once', {
      ScheduleExpression: atOf(due),
      ScheduleExpressionTimezone: 'UTC',
      ActionAfterCompletion: 'DELETE',
      Target: {
        Arn: TARGET,
        RoleArn: ROLE,
        Input: JSON.stringify({ source: 'lifeboat.schedule', scheduleId: 7 }),
      },
    });
    expect(created.ScheduleArn).toBe('arn:aws:scheduler:us-east-1:000000000000:schedule/lifeboat/once');
    const got = await client.send(new GetScheduleCommand({ Name: 'once', GroupName: 'lifeboat' }));
    expect(got).toMatchObject({
      ScheduleExpression: atOf(due),
      State: 'ENABLED',
      ActionAfterCompletion: 'DELETE',
    });
    while (!fired.length && Date.now() < due + 3000) await sleep(20);
    expect(fired).toEqual([
      { arn: TARGET, event: { source: 'lifeboat.schedule', scheduleId: 7 }, at: expect.any(Number) },
    ]);
    expect(fired[0]?.at).toBeGreaterThanOrEqual(due);
    expect(fired[0]?.at).toBeLessThan(due + 500);
    await expect(
      client.send(new GetScheduleCommand({ Name: 'once', GroupName: 'lifeboat' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await sleep(50);
    expect(JSON.parse(await readFile(file(), 'utf8'))).toEqual([]);
  });

  it('honours StartDate and EndDate and the time zone; fires nothing outside them', async () => {
    const start = Date.now() + 800;
    await create('window', {
      ScheduleExpression: 'rate(1 minute)',
      ScheduleExpressionTimezone: 'Europe/Paris',
      StartDate: new Date(start),
      EndDate: new Date(start + 30_000),
    });
    while (!fired.length && Date.now() < start + 3000) await sleep(20);
    expect(fired.map((f) => f.event)).toEqual([{ name: 'window' }]);
    expect(fired[0]?.at).toBeGreaterThanOrEqual(start);
    const got = await client.send(new GetScheduleCommand({ Name: 'window', GroupName: 'lifeboat' }));
    expect(got.StartDate?.getTime()).toBe(start);
    expect(got.ScheduleExpressionTimezone).toBe('Europe/Paris');
    // The next run would be after the end date: none.
    expect(store.nextOf(store.get('lifeboat', 'window') as never)).toBeUndefined();
    await client.send(new DeleteScheduleCommand({ Name: 'window', GroupName: 'lifeboat' }));
  });

  it('answers ConflictException, ResourceNotFoundException and ValidationException as AWS does', async () => {
    await create('twice');
    await expect(create('twice')).rejects.toBeInstanceOf(ConflictException);
    await client.send(new DeleteScheduleCommand({ Name: 'twice', GroupName: 'lifeboat' }));
    await expect(
      client.send(new DeleteScheduleCommand({ Name: 'twice', GroupName: 'lifeboat' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(create('bad', { ScheduleExpression: 'rate(10 seconds)' })).rejects.toBeInstanceOf(
      ValidationException,
    );
    await expect(create('bad', { ScheduleExpressionTimezone: 'Mars/Olympus' })).rejects.toBeInstanceOf(
      ValidationException,
    );
    await expect(create('bad', { GroupName: 'nope' })).rejects.toBeInstanceOf(ResourceNotFoundException);
    expect(store.list()).toEqual([]);
  });

  it('refuses a CreateSchedule without the per-start key (403) and stores nothing', async () => {
    const other = new SchedulerClient({
      region: 'us-east-1',
      endpoint: server.endpoint,
      credentials: newLocalCredentials(),
      maxAttempts: 1,
    });
    await expect(
      other.send(
        new CreateScheduleCommand({
          Name: 'intruder',
          GroupName: 'lifeboat',
          ScheduleExpression: 'rate(1 minute)',
          FlexibleTimeWindow: { Mode: 'OFF' },
          Target: { Arn: TARGET, RoleArn: ROLE },
        }),
      ),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    other.destroy();
    const unsigned = await fetch(`${server.endpoint}/schedules/intruder`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        GroupName: 'lifeboat',
        ScheduleExpression: 'rate(1 minute)',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: { Arn: TARGET, RoleArn: ROLE },
      }),
    });
    expect(unsigned.status).toBe(403);
    expect(store.get('lifeboat', 'intruder')).toBeUndefined();
  });

  it('keeps its schedules across a restart; the dispatcher tick is a schedule firing on its interval', async () => {
    await create('kept', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Asia/Tokyo',
    });
    await stop();
    await start();
    const got = await client.send(new GetScheduleCommand({ Name: 'kept', GroupName: 'lifeboat' }));
    expect(got).toMatchObject({
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Asia/Tokyo',
    });
    // 03:00 in Tokyo is 18:00 UTC.
    expect(new Date(store.nextOf(store.get('lifeboat', 'kept') as never) ?? 0).getUTCHours()).toBe(18);
    await client.send(new DeleteScheduleCommand({ Name: 'kept', GroupName: 'lifeboat' }));

    // The template's tick, as the control plane creates it at start.
    const [tick] = templateSchedules(TEMPLATE, 'us-east-1');
    expect(tick).toMatchObject({
      Name: 'SchedulingDispatchEveryMinute311026BA',
      GroupName: 'lifeboat',
      ScheduleExpression: 'rate(1 minute)',
      ScheduleExpressionTimezone: 'Etc/UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: TARGET, Input: '{"source":"lifeboat.schedule","reason":"tick"}' },
    });
    const [fast] = templateSchedules(TEMPLATE, 'us-east-1', 1);
    expect(fast?.ScheduleExpression).toBe('rate(1 second)');
    await store.put(fast as NonNullable<typeof fast>);
    await sleep(2600);
    await store.delete('lifeboat', 'SchedulingDispatchEveryMinute311026BA');
    expect(fired.length).toBeGreaterThanOrEqual(2);
    expect(fired.length).toBeLessThanOrEqual(3);
    expect(fired[0]).toMatchObject({ arn: TARGET, event: { source: 'lifeboat.schedule', reason: 'tick' } });
  });
});
