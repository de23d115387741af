import { appendFile, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DatastoreLocked } from '#core/errors.ts';
import { Journal } from '#runner/journal.ts';
import { backupTask, fakeRunner, until } from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function runner(run: Parameters<typeof fakeRunner>[0]) {
  const r = await fakeRunner(run);
  cleanups.push(r.remove);
  return r;
}

describe('journal: a task runs once', () => {
  it('answers a redelivered finished task with the same result under the new token, without running it again', async () => {
    let runs = 0;
    const r = await runner({ run: async () => ({ backupId: `b-${++runs}` }) });
    expect(await r.executor.accept(backupTask({ token: 'first' }))).toBe('started');
    await until(() => r.tokens.answers().length === 1);
    expect(await r.executor.accept(backupTask({ token: 'second' }))).toBe('answered');

    expect(runs).toBe(1);
    expect(r.tokens.answers()).toEqual([
      { call: 'success', token: 'first', output: { backupId: 'b-1' } },
      { call: 'success', token: 'second', output: { backupId: 'b-1' } },
    ]);
  });

  it('answers a redelivered failed task with the same error name and cause', async () => {
    let runs = 0;
    const r = await runner({
      run: async () => {
        runs++;
        throw new Error('disk vda is gone');
      },
    });
    await r.executor.accept(backupTask({ token: 'first' }));
    await until(() => r.tokens.answers().length === 1);
    await r.executor.accept(backupTask({ token: 'again' }));

    expect(runs).toBe(1);
    expect(r.tokens.answers()).toEqual([
      { call: 'failure', token: 'first', error: 'Error', cause: 'disk vda is gone' },
      { call: 'failure', token: 'again', error: 'Error', cause: 'disk vda is gone' },
    ]);
  });

  it('ignores a delivery of a task that is still running', async () => {
    let release!: () => void;
    let runs = 0;
    const r = await runner({
      run: () => {
        runs++;
        return new Promise((resolve) => {
          release = () => resolve({ ok: 1 });
        });
      },
    });
    await r.executor.accept(backupTask());
    expect(await r.executor.accept(backupTask({ token: 'dup' }))).toBe('ignored');
    release();
    await until(() => r.tokens.answers().length === 1);
    expect(runs).toBe(1);
    expect(r.tokens.answers().map((a) => a.token)).toEqual(['token-1']);
  });

  it('runs a task again after a transient failure (the state machine retries it under the same id)', async () => {
    let runs = 0;
    const r = await runner({
      run: async () => {
        if (++runs === 1) throw new DatastoreLocked('the repository is locked');
        return { done: true };
      },
    });
    await r.executor.accept(backupTask({ token: 'try-1' }));
    await until(() => r.tokens.answers().length === 1);
    expect(await r.executor.accept(backupTask({ token: 'try-2' }))).toBe('started');
    await until(() => r.tokens.answers().length === 2);
    expect(runs).toBe(2);
    expect(r.tokens.answers()[1]).toEqual({ call: 'success', token: 'try-2', output: { done: true } });
  });

  it('keeps outcomes across a restart, in a 0600 file, and survives a line torn by a crash', async () => {
    const r = await runner({ run: async () => ({ backupId: 'kept' }) });
    await r.executor.accept(backupTask({ taskId: '5/RunOnHost' }));
    await until(() => r.tokens.answers().length === 1);
    await r.journal.start({ ...backupTask({ taskId: '6/RunOnHost', token: 'tok-6' }) });
    await appendFile(r.journal.file, '{"taskId":"7/RunOnHost","state":"sta');

    const reopened = await Journal.open(r.journal.file);
    expect(reopened.admit('5/RunOnHost')).toEqual({
      action: 'answer',
      outcome: { ok: true, result: { backupId: 'kept' } },
    });
    expect(reopened.unfinished().map((u) => [u.taskId, u.token])).toEqual([['6/RunOnHost', 'tok-6']]);
    expect(reopened.admit('7/RunOnHost')).toEqual({ action: 'run' });
    expect((await stat(r.journal.file)).mode & 0o777).toBe(0o600);
  });

  it('never writes the task token of a finished task when compacting', async () => {
    const r = await runner({ run: async () => ({}) });
    for (let i = 0; i < 3; i++) {
      await r.journal.start({ ...backupTask({ taskId: `${i}/RunOnHost`, token: `secret-token-${i}` }) });
      await r.journal.done(`${i}/RunOnHost`, {});
    }
    // Many redundant lines force a compaction at the next open.
    for (let i = 0; i < 1100; i++)
      await appendFile(
        r.journal.file,
        `${JSON.stringify({ taskId: '0/RunOnHost', state: 'done', at: new Date().toISOString(), result: {} })}\n`,
      );
    const reopened = await Journal.open(r.journal.file);
    const text = await readFile(join(r.dir, 'journal.jsonl'), 'utf8');
    expect(text.trim().split('\n')).toHaveLength(6);
    expect(text).not.toContain('secret-token');
    expect(reopened.admit('2/RunOnHost').action).toBe('answer');
  });
});
