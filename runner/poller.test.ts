import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#runner/log.ts';
import { handleMessage, parseTaskMessage, pollLoop } from '#runner/poller.ts';
import { backupTask, FakeQueue, fakeRunner, until } from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function setup(run: () => Promise<unknown> = async () => ({ ok: true }), hostId?: number) {
  const r = await fakeRunner({ run, ...(hostId !== undefined && { hostId }) });
  cleanups.push(r.remove);
  const queue = new FakeQueue();
  return { ...r, queue, deps: { queue, executor: r.executor, reporter: r.reporter, log: silentLogger } };
}

describe('task message validation', () => {
  it('accepts a valid backup task', () => {
    const parsed = parseTaskMessage(JSON.stringify(backupTask()));
    expect(parsed.ok && parsed.task.kind).toBe('backup');
  });

  it('names the bad field of an invalid task and keeps its token and id', () => {
    const parsed = parseTaskMessage(JSON.stringify({ ...backupTask(), disks: [] }));
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.error.name).toBe('InvalidTask');
    expect(parsed.error.message).toMatch(/^invalid task message: disks: /);
    expect(parsed.token).toBe('token-1');
    expect(parsed.taskId).toBe('17/RunOnHost');
  });

  it('refuses another protocol version and an unknown kind', () => {
    const v2 = parseTaskMessage(JSON.stringify({ ...backupTask(), v: 2 }));
    expect(!v2.ok && v2.error.message).toMatch(/task version 2 is not supported/);
    const kind = parseTaskMessage(JSON.stringify({ ...backupTask(), kind: 'format-disk' }));
    expect(!kind.ok && kind.error.message).toMatch(/^invalid task message: kind: /);
  });
});

describe('poller', () => {
  it('fails an invalid message with InvalidTask on its token, deletes it and runs nothing', async () => {
    let runs = 0;
    const s = await setup(async () => ++runs);
    const message = s.queue.push({ ...backupTask(), config: { FS_FREEZE: 'NOPE' } });
    await handleMessage(message, s.deps);
    expect(s.tokens.answers()).toEqual([
      {
        call: 'failure',
        token: 'token-1',
        error: 'InvalidTask',
        cause: expect.stringMatching(/^invalid task message: config\./),
      },
    ]);
    expect(s.queue.deleted).toEqual([message.receiptHandle]);
    expect(runs).toBe(0);
  });

  it('runs nothing and journals nothing for a task whose token no execution waits for (forged or replayed)', async () => {
    let runs = 0;
    const s = await setup(async () => ++runs);
    s.tokens.gone.add('forged-token');
    const message = s.queue.push({ ...backupTask(), token: 'forged-token' });
    await handleMessage(message, s.deps);
    expect(runs).toBe(0);
    expect(s.queue.deleted).toEqual([message.receiptHandle]);
    expect(s.tokens.answers()).toEqual([]);
    // The task id stays free: the real task with a live token still runs.
    const real = s.queue.push(backupTask());
    await handleMessage(real, s.deps);
    await until(() => s.tokens.answers().length === 1);
    expect(runs).toBe(1);
    expect(s.tokens.answers()[0]).toMatchObject({ call: 'success', token: 'token-1' });
  });

  it("refuses another host's task: nothing run, journalled or answered, not even a heartbeat", async () => {
    let runs = 0;
    const s = await setup(async () => ++runs, 1);
    const message = s.queue.push(backupTask({ hostId: 2 }));
    await handleMessage(message, s.deps);
    expect(runs).toBe(0);
    expect(s.queue.deleted).toEqual([message.receiptHandle]);
    // No call at all with its token: the execution still waits for host 2's runner.
    expect(s.tokens.calls).toEqual([]);
    expect(s.journal.admit(backupTask().taskId)).toMatchObject({ action: 'run' });
    // Its own tasks (and tasks of a control plane that names no host) still run.
    await handleMessage(s.queue.push(backupTask({ hostId: 1 })), s.deps);
    await handleMessage(s.queue.push(backupTask({ taskId: '18/RunOnHost', token: 'token-2' })), s.deps);
    await until(() => s.tokens.answers().length === 2);
    expect(runs).toBe(2);
  });

  it('leaves a task on the queue when Step Functions cannot be asked whether it waits', async () => {
    let runs = 0;
    const s = await setup(async () => ++runs);
    s.tokens.failNext.push(Object.assign(new Error('connect ECONNREFUSED'), { name: 'NetworkingError' }));
    const message = s.queue.push(backupTask());
    await handleMessage(message, s.deps);
    expect(runs).toBe(0);
    expect(s.queue.deleted).toEqual([]);
  });

  it('deletes a message that is not even JSON, without answering anyone', async () => {
    const s = await setup();
    const message = s.queue.push('not json{');
    await handleMessage(message, s.deps);
    expect(s.tokens.calls).toEqual([]);
    expect(s.queue.deleted).toEqual([message.receiptHandle]);
  });

  it('journals a valid task before deleting its message, then runs it', async () => {
    const s = await setup(async () => ({ backupId: 'x' }));
    const message = s.queue.push(backupTask());
    await handleMessage(message, s.deps);
    expect(s.journal.get('17/RunOnHost')?.state).toBeDefined();
    expect(s.queue.deleted).toEqual([message.receiptHandle]);
    await until(() => s.tokens.answers().length === 1);
    expect(s.tokens.answers()[0]).toEqual({ call: 'success', token: 'token-1', output: { backupId: 'x' } });
  });

  it('leaves the message on the queue when the journal cannot record it', async () => {
    const s = await setup();
    s.journal.start = async () => {
      throw new Error('ENOSPC: no space left on device');
    };
    const message = s.queue.push(backupTask());
    await handleMessage(message, s.deps);
    expect(s.queue.deleted).toEqual([]);
  });

  it('takes no more disk-heavy tasks than the limit allows', async () => {
    const releases: (() => void)[] = [];
    const s = await setup(() => new Promise((resolve) => releases.push(() => resolve({}))));
    for (let i = 0; i < 3; i++) s.queue.push(backupTask({ taskId: `${i}/RunOnHost`, token: `t${i}` }));
    const stop = new AbortController();
    const loop = pollLoop({ ...s.deps, maxHeavy: 2, waitSeconds: 1, signal: stop.signal });
    await until(() => releases.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(releases).toHaveLength(2);
    expect(s.queue.deleted).toHaveLength(2);
    releases[0]?.();
    await until(() => releases.length === 3);
    for (const release of releases) release();
    stop.abort();
    await loop;
    await until(() => s.tokens.answers().length === 3);
  });
});
