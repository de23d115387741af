/**
 * Progress confined per host: a runner writes `<hostId>/<executionId>` records of the progress
 * table (runner/progress.ts), and the API shows them only for an execution running on that very
 * host, in GET /executions/{id} and the listing. Nothing a runner writes lands on an execution
 * record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executions } from '#functions/repo/executions.ts';
import { readProgress } from '#functions/repo/progress.ts';
import { dynamo } from '#platform/aws.ts';
import { progressKey } from '#platform/progress.ts';
import { silentLogger } from '#runner/log.ts';
import { dynamoProgressSink, taskProgress } from '#runner/progress.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';

const admin = { token: 'admin-token-progress' };
let db: DynamoDbLocal;

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  db = await startDynamoDbLocal();
  await seedUser('admin', admin.token);
  const base = { kind: 'backup' as const, requestedBy: 'admin', createdAt: new Date().toISOString() };
  // Execution 7 runs its task on host 3; execution 8 has ended (its record holds the final values).
  await executions.put({ ...base, id: '7', state: 'RUNNING', phase: 'running', hostId: 3, bytesTotal: 100 });
  await executions.put({
    ...base,
    id: '8',
    state: 'SUCCEEDED',
    phase: 'done',
    hostId: 3,
    bytesDone: 50,
    bytesTotal: 50,
  });
});
afterAll(async () => {
  await db?.stop();
});

const shown = async (id: string) => (await call('GET', `/executions/${id}`, admin)).body;
const listed = async (id: string) =>
  (await call('GET', '/executions', admin)).body.items.find((e: { id: string }) => e.id === id);

describe('task progress', () => {
  it("ignores a record under another host's key", async () => {
    // Host 4 writes progress for execution 7, which runs on host 3.
    await dynamoProgressSink(4)('7', { phase: 'uploading', bytesDone: 99, bytesTotal: 100 });
    for (const execution of [await shown('7'), await listed('7')]) {
      expect(execution).toMatchObject({ state: 'RUNNING', phase: 'running', bytesDone: 0, bytesTotal: 100 });
    }
  });

  it("shows the host's own record in GET /executions/{id} and the listing, leaving the execution record alone", async () => {
    const progress = taskProgress('7/RunOnHost', dynamoProgressSink(3), silentLogger, 0);
    progress.phase('uploading');
    progress.bytes(40, 100);
    await progress.flush();
    for (const execution of [await shown('7'), await listed('7')]) {
      expect(execution).toMatchObject({
        state: 'RUNNING',
        phase: 'uploading',
        bytesDone: 40,
        bytesTotal: 100,
      });
    }
    expect(await executions.get('7')).toMatchObject({ phase: 'running', bytesDone: 0 });
    const stored = await readProgress([progressKey(3, '7')]);
    expect(stored.get('3/7')).toEqual({ phase: 'uploading', bytesDone: 40, bytesTotal: 100 });
  });

  it('keeps the final values of an execution past its host task', async () => {
    await dynamoProgressSink(3)('8', { phase: 'uploading', bytesDone: 1, bytesTotal: 2 });
    expect(await shown('8')).toMatchObject({
      state: 'SUCCEEDED',
      phase: 'done',
      bytesDone: 50,
      bytesTotal: 50,
    });
  });

  it('reads a running execution and its progress in one call from its second poll on, and an ended one alone', async () => {
    const base = { kind: 'backup' as const, requestedBy: 'admin', createdAt: new Date().toISOString() };
    await executions.put({
      ...base,
      id: '9',
      state: 'RUNNING',
      phase: 'running',
      hostId: 3,
      bytesTotal: 100,
    });
    await dynamoProgressSink(3)('9', { phase: 'uploading', bytesDone: 60, bytesTotal: 100 });
    const calls: string[] = [];
    const stack = dynamo().middlewareStack;
    stack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string; RequestItems?: Record<string, unknown> };
        const tables = input.TableName ? [input.TableName] : Object.keys(input.RequestItems ?? {});
        const named = tables.map((t) => t.replace(/^.*?(executions|progress)$/, '$1')).sort();
        if (named.some((t) => t === 'executions' || t === 'progress')) {
          calls.push(`${context.commandName} ${named.join('+')}`);
        }
        return next(args);
      },
      { step: 'initialize', name: 'countPollCalls' },
    );
    const poll = async () => {
      calls.length = 0;
      const shownNow = await shown('9');
      return { shownNow, calls: [...calls] };
    };
    try {
      const first = await poll();
      expect(first.shownNow).toMatchObject({ state: 'RUNNING', phase: 'uploading', bytesDone: 60 });
      expect(first.calls).toEqual(['GetItemCommand executions', 'BatchGetItemCommand progress']);
      const second = await poll();
      expect(second.shownNow).toMatchObject({ state: 'RUNNING', phase: 'uploading', bytesDone: 60 });
      expect(second.calls).toEqual(['BatchGetItemCommand executions+progress']);
      // Ended: its record's final values, though the progress record is still there.
      await executions.put({
        ...base,
        id: '9',
        state: 'SUCCEEDED',
        phase: 'done',
        hostId: 3,
        bytesDone: 100,
        bytesTotal: 100,
      });
      const ended = await poll();
      expect(ended.shownNow).toMatchObject({ state: 'SUCCEEDED', phase: 'done', bytesDone: 100 });
      expect(ended.calls).toEqual(['BatchGetItemCommand executions+progress']);
      expect((await poll()).calls).toEqual(['GetItemCommand executions']);
    } finally {
      stack.remove('countPollCalls');
    }
  });
});
