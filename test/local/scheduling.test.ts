/**
 * Dispatcher limits, priorities, backup jobs, scheduled actions and the sweep on the real local
 * stack (API, dispatcher, synthesized state machines, emulators), with a responder playing the
 * runners of five hosts whose backup steps take a while.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCredentials, readLocalCredentials } from '#local/credentials.ts';
import { localDown } from '#local/down.ts';
import { freeStackPorts } from '#local/ports.ts';
import { localUp } from '#local/up.ts';
import { type HostResponder, SIMULATED_HOST_KEY, startHostResponder } from '../../bench/storm-responder.ts';
import { runCli } from '../cli/run-cli.ts';
import { apiCall, type Connection, executionEnded } from './responder.ts';

const HOSTS = 5;
const VMS_PER_HOST = 10;
let home: string;
let conn: Connection;
let ports: Awaited<ReturnType<typeof freeStackPorts>>;
let responder: HostResponder;
let ddb: DynamoDBDocumentClient;
let credentials: LocalCredentials;
/** VMs of the host that runs one backup at a time. */
const prioVmIds: number[] = [];
/** VM ids by host id, in domain order. */
const vmsOf = new Map<number, number[]>();

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers.
const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> =>
  apiCall(conn, method, path, body);
const counter = async (name: string) =>
  Number(
    (await ddb.send(new GetCommand({ TableName: 'lifeboat-counters', Key: { name }, ConsistentRead: true })))
      .Item?.value ?? 0,
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const vm = (host: number, i: number) => vmsOf.get(host)?.[i] as number;
/** The schedules local mode's EventBridge Scheduler holds, by name (its file under the home). */
const storedSchedules = async (): Promise<
  Map<string, { ScheduleExpression: string; ActionAfterCompletion: string }>
> =>
  new Map(
    JSON.parse(await readFile(join(home, 'scheduler', 'schedules.json'), 'utf8')).map(
      (s: { Name: string; ScheduleExpression: string; ActionAfterCompletion: string }) => [s.Name, s],
    ),
  );

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'lifeboat-sched-e2e-'));
  ports = await freeStackPorts();
  await writeFile(
    join(home, 'config.json'),
    JSON.stringify({
      ports,
      maxBackups: 5,
      maxBackupsHost: 2,
      heartbeatSeconds: 60,
      schedulerIntervalSeconds: 1,
      // The responder plays the hosts: no datastore monitors among the backups it counts.
      monitorIntervalMinutes: 0,
      runner: false,
      demo: false,
    }),
  );
  conn = await localUp({ home });
  // The emulators take only requests signed with this start's key.
  credentials = await readLocalCredentials(home);
  ddb = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${ports.dynamodb}`, credentials }),
  );
  const ds = await api('POST', '/datastores', {
    name: 'repo',
    driver: 'restic',
    attributes: { RESTIC_PASSWORD: 'pw' },
  });
  expect(ds.status).toBe(201);
  const queues = new Map<number, string>();
  for (let h = 1; h <= HOSTS; h++) {
    const host = await api('POST', '/hosts', { name: `kvm-${h}`, publicKey: SIMULATED_HOST_KEY.publicKey });
    queues.set(host.body.id, host.body.queueUrl);
    const domains = Array.from({ length: VMS_PER_HOST }, (_, i) => ({
      domain: `vm-${h}-${String(i).padStart(2, '0')}`,
      state: 'RUNNING',
      disks: [{ id: 0, target: 'vda', source: `/images/${h}-${i}.qcow2`, format: 'qcow2', size: 1 << 20 }],
      nics: [],
      template: '<domain/>',
    }));
    expect((await api('PUT', `/hosts/${host.body.id}/inventory`, { vms: domains })).status).toBe(200);
    const listed = (await api('GET', `/vms?hostId=${host.body.id}`)).body.items as {
      id: number;
      domain: string;
    }[];
    vmsOf.set(
      host.body.id,
      listed.sort((a, b) => a.domain.localeCompare(b.domain)).map((v) => v.id),
    );
  }
  // A host with its own limit of one backup at a time (MAX_BACKUPS_HOST override).
  const prio = await api('POST', '/hosts', {
    name: 'kvm-prio',
    maxBackupsHost: 1,
    publicKey: SIMULATED_HOST_KEY.publicKey,
  });
  expect(prio.body.maxBackupsHost).toBe(1);
  queues.set(prio.body.id, prio.body.queueUrl);
  const prioDomains = Array.from({ length: 7 }, (_, i) => ({
    domain: `prio-${i}`,
    state: 'RUNNING',
    disks: [{ id: 0, target: 'vda', source: `/images/prio-${i}.qcow2`, format: 'qcow2', size: 1 << 20 }],
    nics: [],
    template: '<domain/>',
  }));
  const prioVms = (await api('PUT', `/hosts/${prio.body.id}/inventory`, { vms: prioDomains })).body.items as {
    id: number;
    domain: string;
  }[];
  prioVmIds.push(...prioVms.sort((a, b) => a.domain.localeCompare(b.domain)).map((v) => v.id));
  responder = startHostResponder({
    sqsEndpoint: `http://127.0.0.1:${ports.sqs}`,
    sfnEndpoint: `http://127.0.0.1:${ports.stepfunctions}`,
    credentials,
    queues,
    delayMs: 400,
  });
}, 180_000);

afterAll(async () => {
  await responder?.stop();
  ddb?.destroy();
  await localDown({ home });
  await rm(home, { recursive: true, force: true });
}, 60_000);

/** Every execution ended; answers them. */
async function allEnded(ids: string[], timeoutMs = 120_000) {
  return Promise.all(ids.map((id) => executionEnded(conn, id, timeoutMs)));
}

describe('dispatcher limits on the local stack', () => {
  it('GET /config shows the limits', async () => {
    expect((await api('GET', '/config')).body).toMatchObject({ maxBackups: 5, maxBackupsHost: 2 });
  });

  it('50 backups over 5 hosts at once: never more than 5 running, nor 2 on one host; all succeed', async () => {
    let maxRunning = 0;
    let maxHost = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const items = (await api('GET', '/executions')).body.items as { state: string; hostId: number }[];
        const running = items.filter((e) => e.state === 'RUNNING');
        maxRunning = Math.max(maxRunning, running.length);
        const byHost = new Map<number, number>();
        for (const e of running) byHost.set(e.hostId, (byHost.get(e.hostId) ?? 0) + 1);
        for (const n of byHost.values()) maxHost = Math.max(maxHost, n);
        await sleep(100);
      }
    })();
    const all = [...vmsOf.values()].flat();
    expect(all).toHaveLength(50);
    const requested = await Promise.all(
      all.map((id) => api('POST', `/vms/${id}/backup`, { datastoreId: 1 })),
    );
    expect(requested.every((r) => r.status === 202)).toBe(true);
    const ended = await allEnded(
      requested.map((r) => r.body.id),
      180_000,
    );
    watching = false;
    await watcher;
    expect(
      ended.filter((e) => e.state !== 'SUCCEEDED').map((e) => `${e.id} ${e.state} ${e.error?.message}`),
    ).toEqual([]);
    // Host steps are only part of a slot's time (Admit and Commit run in it too).
    expect(responder.peak()).toBeLessThanOrEqual(5);
    expect(responder.peak()).toBeGreaterThanOrEqual(3);
    expect(responder.peakPerHost()).toBeLessThanOrEqual(2);
    expect(maxRunning).toBeLessThanOrEqual(5);
    expect(maxHost).toBeLessThanOrEqual(2);
    expect(await counter('active')).toBe(0);
  }, 240_000);

  it('higher priorities start first when a slot frees up (a host limited to one backup at a time)', async () => {
    // One backup held at the host fills its limit of one.
    let open = () => {};
    responder.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    responder.delayMs = 0;
    const [first, ...waiting] = prioVmIds;
    const filler = (await api('POST', `/vms/${first}/backup`, { datastoreId: 1 })).body.id;
    while (responder.active() < 1) await sleep(50);
    const low = waiting.slice(0, 3);
    const high = waiting.slice(3, 6);
    const ids = [];
    for (const v of low) ids.push((await api('POST', `/vms/${v}/backup`, { datastoreId: 1 })).body.id);
    for (const v of high)
      ids.push((await api('POST', `/vms/${v}/backup`, { datastoreId: 1, priority: 40 })).body.id);
    // Nothing else starts on that host while the first backup runs.
    await sleep(1500);
    expect(responder.tasks.filter((t) => waiting.includes(t.vmId ?? -1))).toEqual([]);
    responder.gate = undefined;
    open();
    await allEnded([filler, ...ids]);
    const order = responder.tasks
      .filter((t) => t.kind === 'backup' && waiting.includes(t.vmId ?? -1))
      .map((t) => t.vmId);
    // Highest priority first, then oldest first.
    expect(order).toEqual([...high, ...low]);
  }, 120_000);
});

describe('backup jobs on the local stack', () => {
  it('a sequential job backs up its VMs one at a time, in order', async () => {
    responder.delayMs = 300;
    const vmIds = [vm(4, 5), vm(5, 5), vm(4, 6)];
    const job = (await api('POST', '/jobs', { name: 'seq', vmIds, datastoreId: 1 })).body;
    const run = await api('POST', `/jobs/${job.id}/backup`);
    expect(run.status).toBe(202);
    const done = await waitJob(job.id);
    expect(done).toMatchObject({ updatedVms: vmIds, errorVms: [], backingUpVms: [], outdatedVms: [] });
    const execs = await jobExecutions(vmIds);
    const steps = await hostSteps(vmIds, run.body.job.lastRunAt);
    for (let i = 1; i < execs.length; i++) {
      // The next VM's host step comes after the previous backup ended.
      expect(steps[i] as number).toBeGreaterThanOrEqual(Date.parse(execs[i - 1]?.endedAt ?? ''));
    }
  }, 120_000);

  it('a parallel job backs up its VMs at once; a VM that cannot be backed up goes to ERROR and retry redoes it', async () => {
    const vmIds = [vm(1, 7), vm(2, 7), vm(3, 7)];
    const job = (await api('POST', '/jobs', { name: 'par', vmIds, datastoreId: 1, execution: 'parallel' }))
      .body;
    // VM on host 3 is suspended: it cannot be backed up.
    const suspended = vm(3, 7);
    await setVmState(3, suspended, 'SUSPENDED');
    responder.delayMs = 1500;
    const run = await api('POST', `/jobs/${job.id}/backup`);
    expect(run.body.executions).toHaveLength(2);
    const done = await waitJob(job.id);
    expect(done).toMatchObject({ updatedVms: [vm(1, 7), vm(2, 7)], errorVms: [suspended] });
    const execs = await jobExecutions([vm(1, 7), vm(2, 7)]);
    const steps = await hostSteps([vm(1, 7), vm(2, 7)], run.body.job.lastRunAt);
    // Both host steps came before either backup ended: they ran at the same time.
    const firstEnd = Math.min(...execs.map((e) => Date.parse(e.endedAt)));
    expect(Math.max(...(steps as number[]))).toBeLessThan(firstEnd);
    responder.delayMs = 200;
    await setVmState(3, suspended, 'RUNNING');
    const retry = await api('POST', `/jobs/${job.id}/retry`);
    expect(retry.body.executions.map((e: { vmId: number }) => e.vmId)).toEqual([suspended]);
    expect(await waitJob(job.id)).toMatchObject({
      updatedVms: [vm(1, 7), vm(2, 7), suspended],
      errorVms: [],
    });
  }, 120_000);
});

describe("a backup job's BACKUP_CONFIG and repository", () => {
  it("applies the job's defaults under the VM's own values, names the job's repository, and keeps KEEP_LAST", async () => {
    responder.delayMs = 50;
    const [own, plain] = [vm(5, 9), vm(4, 9)];
    // The VM's own FS_FREEZE wins over the job's; the other VM takes the job's.
    expect((await api('PUT', `/vms/${own}/backup-config`, { pairs: { FS_FREEZE: 'NONE' } })).status).toBe(
      200,
    );
    const job = (
      await api('POST', '/jobs', {
        name: 'cfg',
        vmIds: [own, plain],
        datastoreId: 1,
        execution: 'parallel',
        config: { FS_FREEZE: 'SUSPEND', KEEP_LAST: '1' },
      })
    ).body;
    const since = Date.now();
    for (let run = 0; run < 2; run++) {
      expect((await api('POST', `/jobs/${job.id}/backup`)).status).toBe(202);
      // A parallel job lists its VMs in the order their backups ended.
      const done = await waitJob(job.id);
      expect({
        updated: [...done.updatedVms].sort((a: number, b: number) => a - b),
        errors: done.errorVms,
      }).toEqual({
        updated: [own, plain].sort((a, b) => a - b),
        errors: [],
      });
    }
    const seen = (v: number) =>
      responder.tasks.filter((t) => t.vmId === v && t.kind === 'backup' && t.receivedAt >= since);
    expect(seen(own).map((t) => [t.config?.FS_FREEZE, t.jobId])).toEqual([
      ['NONE', job.id],
      ['NONE', job.id],
    ]);
    expect(seen(plain).map((t) => [t.config?.FS_FREEZE, t.jobId])).toEqual([
      ['SUSPEND', job.id],
      ['SUSPEND', job.id],
    ]);
    for (const v of [own, plain]) {
      const ids = (await api('GET', `/vms/${v}`)).body.backups.BACKUP_IDS as number[];
      // KEEP_LAST=1 from the job: only the second run's image is kept, and it is the job's.
      expect(ids).toHaveLength(1);
      expect((await api('GET', `/images/${ids[0]}`)).body).toMatchObject({ jobId: job.id, state: 'READY' });
    }
  }, 120_000);
});

describe('scheduled actions and the sweep on the local stack', () => {
  it('a backup scheduled at +5 s runs after 5 s, not before', async () => {
    responder.delayMs = 100;
    const target = vm(5, 8);
    const asked = Date.now();
    const created = await api('POST', `/vms/${target}/schedules`, { datastoreId: 1, time: '+5' });
    expect(created.status).toBe(201);
    // The API created the action's EventBridge schedule, through the SDK, in local mode's Scheduler.
    const name = `lifeboat-action-${created.body.id}`;
    expect((await storedSchedules()).get(name)).toMatchObject({
      ScheduleExpression: expect.stringMatching(/^at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\)$/),
      ActionAfterCompletion: 'DELETE',
    });
    // The stack's tick, taken from the template, at the configured interval.
    const tick = [...(await storedSchedules()).entries()].find(([n]) =>
      n.startsWith('SchedulingDispatchEveryMinute'),
    );
    expect(tick?.[1]).toMatchObject({ ScheduleExpression: 'rate(1 second)' });
    const task = await until(
      () => responder.tasks.find((t) => t.vmId === target && t.kind === 'backup' && t.receivedAt > asked),
      20_000,
    );
    expect(task.receivedAt - asked).toBeGreaterThanOrEqual(5000);
    expect(task.receivedAt - asked).toBeLessThan(9000);
    const schedule = (await api('GET', `/vms/${target}/schedules`)).body.items[0];
    expect(schedule).toMatchObject({ runs: 1, nextRuns: [] });
    expect((await executionEnded(conn, schedule.lastExecutionId)).state).toBe('SUCCEEDED');
    // Fired once, the at() schedule deleted itself.
    expect((await storedSchedules()).has(name)).toBe(false);
  }, 60_000);

  it('an execution stopped from outside (StopExecution) gives its slot back and unlocks its VM', async () => {
    const target = vm(2, 9);
    responder.hold = (t) => t.vmId === target;
    const asked = Date.now();
    const requested = await api('POST', `/vms/${target}/backup`, { datastoreId: 1 });
    await until(() => responder.tasks.find((t) => t.vmId === target && t.receivedAt > asked), 20_000);
    const running = (await api('GET', `/executions/${requested.body.id}`)).body;
    expect(running.state).toBe('RUNNING');
    expect(await counter('active')).toBe(1);
    const sfn = new SFNClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${ports.stepfunctions}`,
      credentials,
    });
    await sfn.send(new StopExecutionCommand({ executionArn: running.executionArn, cause: 'operator' }));
    sfn.destroy();
    const ended = await executionEnded(conn, requested.body.id, 20_000);
    expect(ended.state).toBe('ABORTED');
    await until(async () => ((await counter('active')) === 0 ? true : undefined), 10_000);
    expect(await counter(`active:host:${running.hostId}`)).toBe(0);
    expect((await api('GET', `/vms/${target}`)).body.lock).toBeUndefined();
    expect((await api('GET', `/images/${ended.imageId}`)).body.state).toBe('ERROR');
    responder.hold = () => false;
  }, 60_000);

  it('POST /executions/{id}/cancel stops it in Step Functions (ABORTED) and ends it at once: slot, lock, image', async () => {
    const target = vm(2, 8);
    responder.hold = (t) => t.vmId === target;
    const asked = Date.now();
    const requested = await api('POST', `/vms/${target}/backup`, { datastoreId: 1 });
    await until(() => responder.tasks.find((t) => t.vmId === target && t.receivedAt > asked), 20_000);
    const running = (await api('GET', `/executions/${requested.body.id}`)).body;
    expect(running.state).toBe('RUNNING');
    expect(await counter('active')).toBe(1);
    // The Api function's own IAM role may stop and describe the execution (local IAM checks it).
    const cancelled = await api('POST', `/executions/${requested.body.id}/cancel`);
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    expect(cancelled.body).toMatchObject({
      state: 'ABORTED',
      phase: 'cancelled',
      error: { name: 'Cancelled' },
    });
    // Ended by the cancel itself, not a minute later by the sweep.
    expect(await counter('active')).toBe(0);
    expect(await counter(`active:host:${running.hostId}`)).toBe(0);
    expect((await api('GET', `/vms/${target}`)).body.lock).toBeUndefined();
    expect((await api('GET', `/images/${cancelled.body.imageId}`)).body.state).toBe('ERROR');
    const sfn = new SFNClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${ports.stepfunctions}`,
      credentials,
    });
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: running.executionArn }));
    sfn.destroy();
    expect(described.status).toBe('ABORTED');
    const again = await api('POST', `/executions/${requested.body.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/already ended ABORTED at .*: nothing to cancel/);
    responder.hold = () => false;
  }, 60_000);
});

describe('the lifeboat command', () => {
  const cli = async (args: string[]) => {
    const out = await runCli([...args, '--json'], {
      env: { LIFEBOAT_ENDPOINT: conn.endpoint, LIFEBOAT_TOKEN: conn.token },
    });
    expect(out.exitCode, out.stderr).toBe(0);
    return JSON.parse(out.stdout);
  };

  it('vm sched add/list/delete shows the next run times; a bad cron is one clear line, exit 2', async () => {
    const target = vm(1, 9);
    const added = await cli([
      'vm',
      'sched',
      'add',
      String(target),
      '-d',
      '1',
      '--time',
      '2099-01-05T02:00:00Z',
      '--repeat',
      'weekly',
      '--days',
      '1,3',
      '--end',
      '4',
    ]);
    expect(added.nextRuns).toEqual([
      '2099-01-05T02:00:00.000Z',
      '2099-01-07T02:00:00.000Z',
      '2099-01-12T02:00:00.000Z',
    ]);
    expect(added.description).toBe('weekly on MON,WED at 02:00 UTC, 4 runs');
    expect((await storedSchedules()).get(`lifeboat-action-${added.id}`)).toMatchObject({
      ScheduleExpression: 'cron(0 2 ? * MON,WED *)',
      ActionAfterCompletion: 'NONE',
    });
    const listed = await cli(['vm', 'sched', 'list', String(target)]);
    expect(listed.map((s: { id: number }) => s.id)).toEqual([added.id]);
    const bad = await runCli(
      [
        'vm',
        'sched',
        'add',
        String(target),
        '-d',
        '1',
        '--time',
        'now',
        '--repeat',
        'cron',
        '0',
        '2',
        '*',
        '*',
        '*',
      ],
      {
        env: { LIFEBOAT_ENDPOINT: conn.endpoint, LIFEBOAT_TOKEN: conn.token },
      },
    );
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^lifeboat: .*repeat: cron\(0 2 \* \* \*\): must have 6 fields/);
    await cli(['vm', 'sched', 'delete', String(target), String(added.id)]);
    expect(await cli(['vm', 'sched', 'list', String(target)])).toEqual([]);
    expect((await storedSchedules()).has(`lifeboat-action-${added.id}`)).toBe(false);
  }, 60_000);

  it('backupjob create/show/update/delete', async () => {
    const created = await cli([
      'backupjob',
      'create',
      '--name',
      'cli-job',
      '--vms',
      `${vm(2, 8)},${vm(3, 8)}`,
      '-d',
      '1',
      '--priority',
      '10',
      '--execution',
      'parallel',
      'KEEP_LAST=2',
    ]);
    expect(created).toMatchObject({
      name: 'cli-job',
      execution: 'PARALLEL',
      priority: 10,
      config: { KEEP_LAST: '2' },
    });
    const updated = await cli([
      'backupjob',
      'update',
      String(created.id),
      'MODE=FULL',
      '--execution',
      'sequential',
    ]);
    expect(updated).toMatchObject({ execution: 'SEQUENTIAL', config: { KEEP_LAST: '2', MODE: 'FULL' } });
    const shown = await cli(['backupjob', 'show', String(created.id)]);
    expect(shown.vmIds).toEqual([vm(2, 8), vm(3, 8)]);
    await cli(['backupjob', 'delete', String(created.id)]);
    expect((await cli(['backupjob', 'list'])).map((j: { id: number }) => j.id)).not.toContain(created.id);
  }, 60_000);
});

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(100);
  }
}

async function waitJob(id: number) {
  let last: unknown;
  return until(async () => {
    last = (await api('GET', `/jobs/${id}`)).body;
    const job = (await api('GET', `/jobs/${id}`)).body;
    return job.backingUpVms.length === 0 && job.outdatedVms.length === 0 ? job : undefined;
  }, 30_000).catch(async (err) => {
    const recent = (await api('GET', '/executions')).body.items.slice(0, 4);
    throw new Error(`${err}: job ${JSON.stringify(last)} executions ${JSON.stringify(recent)}`);
  });
}

/** The latest execution of each VM, in the order given. */
async function jobExecutions(vmIds: number[]) {
  const items = (await api('GET', '/executions')).body.items as {
    vmId: number;
    id: string;
    startedAt: string;
    endedAt: string;
  }[];
  return vmIds.map((v) => {
    const latest = items.filter((e) => e.vmId === v).sort((a, b) => Number(b.id) - Number(a.id))[0];
    if (!latest) throw new Error(`VM ${v} has no execution`);
    return latest;
  });
}

/** When each VM's last backup host step reached the responder, after `since`. */
async function hostSteps(vmIds: number[], since: string): Promise<(number | undefined)[]> {
  const after = Date.parse(since);
  return vmIds.map(
    (v) =>
      responder.tasks.filter((t) => t.vmId === v && t.kind === 'backup' && t.receivedAt >= after).at(-1)
        ?.receivedAt,
  );
}

async function setVmState(hostId: number, vmId: number, state: string) {
  const vmsOfHost = (await api('GET', `/vms?hostId=${hostId}`)).body.items as {
    id: number;
    domain: string;
    state: string;
    disks: unknown[];
  }[];
  const domains = vmsOfHost.map((v) => ({
    domain: v.domain,
    state: v.id === vmId ? state : v.state,
    disks: [{ id: 0, target: 'vda', source: `/images/${v.domain}.qcow2`, format: 'qcow2', size: 1 << 20 }],
    nics: [],
    template: '<domain/>',
  }));
  expect((await api('PUT', `/hosts/${hostId}/inventory`, { vms: domains })).status).toBe(200);
}
