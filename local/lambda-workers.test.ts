/**
 * Functions in worker threads: each sees its own environment, errors come back as Lambda reports
 * them, events and results go through JSON, concurrent invocations get environments of their own,
 * and a timed-out invocation fails with Sandbox.Timedout and its environment is replaced.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionError } from './functions.ts';
import { type FunctionRuntime, LambdaWorkers } from './lambda-workers.ts';

let dir: string;
let workers: LambdaWorkers;

const MODULE = `
import { threadId } from 'node:worker_threads';
class Conflict extends Error { name = 'Conflict'; }
let calls = 0;
export async function handler(event, context) {
  calls++;
  if (event.throw) throw new Conflict('VM 3 is locked');
  if (event.exit) process.exit(3);
  if (event.hog) { const hog = []; for (;;) hog.push(new Array(1e6).fill(1)); }
  if (event.sleepMs) await new Promise((r) => setTimeout(r, event.sleepMs));
  return {
    seen: process.env.PROBE, threadId, calls, event, date: new Date(0),
    remaining: context.getRemainingTimeInMillis(), name: context.functionName,
  };
}
`;

const runtime = (id: string, file: string, probe: string): FunctionRuntime => ({
  id,
  timeoutSeconds: 2,
  env: { PROBE: probe },
  init: {
    file,
    handler: 'handler',
    functionName: `lifeboat-${id}`,
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:lifeboat-${id}`,
    memoryLimitInMB: '64',
  },
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-workers-'));
  const file = join(dir, 'index.mjs');
  await writeFile(file, MODULE);
  // Two manifest ids, the same module, different environments.
  workers = new LambdaWorkers([runtime('Api', file, 'api'), runtime('Dispatcher', file, 'dispatcher')], {
    maxPerFunction: 2,
    idleMs: 300,
  });
});
afterAll(async () => {
  await workers?.stop();
  await rm(dir, { recursive: true, force: true });
});

type Answer = {
  seen: string;
  threadId: number;
  calls: number;
  event: unknown;
  date: unknown;
  remaining: number;
};

describe('LambdaWorkers', () => {
  it("runs each function with its own process.env, not this process's", async () => {
    const api = (await workers.invoke('Api', { a: 1 })) as Answer;
    const dispatcher = (await workers.invoke('lifeboat-Dispatcher', {})) as Answer;
    expect(api).toMatchObject({
      seen: 'api',
      event: { a: 1 },
      date: '1970-01-01T00:00:00.000Z',
      name: 'lifeboat-Api',
    });
    expect(api.remaining).toBeGreaterThan(0);
    expect(api.remaining).toBeLessThanOrEqual(2000);
    expect(dispatcher.seen).toBe('dispatcher');
    expect(dispatcher.threadId).not.toBe(api.threadId);
    expect(process.env.PROBE).toBeUndefined();
    // Warm: the next invocation reuses the environment (module state kept).
    const again = (await workers.invoke('Api', {})) as Answer;
    expect(again).toMatchObject({ threadId: api.threadId, calls: api.calls + 1 });
  });

  it('reports a thrown error by its name and message', async () => {
    const err = await workers.invoke('Api', { throw: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FunctionError);
    expect((err as FunctionError).toPayload()).toEqual({
      errorType: 'Conflict',
      errorMessage: 'VM 3 is locked',
    });
  });

  it('gives concurrent invocations environments of their own', async () => {
    const [a, b] = (await Promise.all([
      workers.invoke('Api', { sleepMs: 200 }),
      workers.invoke('Api', { sleepMs: 200 }),
    ])) as Answer[];
    expect(a?.threadId).not.toBe(b?.threadId);
    expect(workers.environments().Api).toBe(2);
    // The burst's extra environment is reclaimed once idle; one stays warm.
    await new Promise((r) => setTimeout(r, 1000));
    expect(workers.environments().Api).toBe(1);
    expect([a?.threadId, b?.threadId]).toContain(((await workers.invoke('Api', {})) as Answer).threadId);
  });

  it('makes invocations beyond the cap wait for a free environment', async () => {
    const started = Date.now();
    const answers = (await Promise.all(
      [1, 2, 3].map(() => workers.invoke('Api', { sleepMs: 300 })),
    )) as Answer[];
    expect(new Set(answers.map((a) => a.threadId)).size).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
  });

  it('fails a timed-out invocation with Sandbox.Timedout and replaces its environment', async () => {
    const before = (await workers.invoke('Dispatcher', {})) as Answer;
    const err = await workers.invoke('Dispatcher', { sleepMs: 5000 }).catch((e: unknown) => e);
    expect((err as FunctionError).errorType).toBe('Sandbox.Timedout');
    expect((err as FunctionError).errorMessage).toMatch(/Task timed out after 2\.00 seconds$/);
    const after = (await workers.invoke('Dispatcher', {})) as Answer;
    expect(after.threadId).not.toBe(before.threadId);
    expect(after.calls).toBe(1);
  });

  it('fails an invocation whose environment exits with Runtime.ExitError', async () => {
    const err = await workers.invoke('Dispatcher', { exit: true }).catch((e: unknown) => e);
    expect((err as FunctionError).errorType).toBe('Runtime.ExitError');
    expect(((await workers.invoke('Dispatcher', {})) as Answer).seen).toBe('dispatcher');
  });

  it('fails an invocation that outgrows the memory size with Runtime.OutOfMemory', async () => {
    const err = await workers.invoke('Dispatcher', { hog: true }).catch((e: unknown) => e);
    expect((err as FunctionError).errorType).toBe('Runtime.OutOfMemory');
    expect(((await workers.invoke('Dispatcher', {})) as Answer).seen).toBe('dispatcher');
  });

  it('answers ResourceNotFoundException for an unknown function', async () => {
    const err = await workers.invoke('Nope', {}).catch((e: unknown) => e);
    expect((err as FunctionError).errorType).toBe('ResourceNotFoundException');
  });
});

describe('LambdaWorkers stopped', () => {
  it('fails an invocation that comes after stop and starts no environment for it', async () => {
    const stopped = new LambdaWorkers([runtime('Api', join(dir, 'index.mjs'), 'api')]);
    expect(((await stopped.invoke('Api', {})) as Answer).seen).toBe('api');
    await stopped.stop();
    const err = await stopped.invoke('Api', {}).catch((e: unknown) => e);
    expect((err as FunctionError).errorType).toBe('ServiceException');
    expect((err as FunctionError).errorMessage).toMatch(/the local Lambda service has stopped/);
    // A worker started here would keep the process alive after the stack stopped.
    expect(stopped.environments()).toEqual({ Api: 0 });
  });
});

describe('LambdaWorkers init', () => {
  // A module whose import takes 2.5 s (a big bundle on a busy host), with a 2 s timeout.
  const SLOW = `
const loadedAt = Date.now();
while (Date.now() - loadedAt < 2500) {}
export async function handler() { return { loadedAt }; }
`;

  it("loads the module as the environment starts and counts the timeout from the end of init, as Lambda's", async () => {
    const file = join(dir, 'slow.mjs');
    await writeFile(file, SLOW);
    const slow = new LambdaWorkers([runtime('Api', file, 'api')]);
    try {
      const started = Date.now();
      // Before, the 2.5 s import counted against the 2 s timeout: Sandbox.Timedout.
      const answer = (await slow.invoke('Api', {})) as { loadedAt: number };
      expect(answer.loadedAt).toBeGreaterThanOrEqual(started - 50);
    } finally {
      await slow.stop();
    }
  });

  it('prewarm resolves once each environment is initialized, and the first invocation then runs warm', async () => {
    const file = join(dir, 'slow-2.mjs');
    await writeFile(file, SLOW);
    const slow = new LambdaWorkers([runtime('Api', file, 'api'), runtime('Dispatcher', file, 'dispatcher')]);
    try {
      const started = Date.now();
      await slow.prewarm(['Api', 'Dispatcher']);
      // One after the other: both imports are over.
      expect(Date.now() - started).toBeGreaterThanOrEqual(5000);
      const t = Date.now();
      const answer = (await slow.invoke('Dispatcher', {})) as { loadedAt: number };
      expect(Date.now() - t).toBeLessThan(1000);
      expect(answer.loadedAt).toBeLessThan(t);
      expect(slow.environments()).toEqual({ Api: 1, Dispatcher: 1 });
    } finally {
      await slow.stop();
    }
  }, 15_000);
});
