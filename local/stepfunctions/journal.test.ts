import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExecutionJournal } from './journal.ts';

interface Rec {
  id: string;
  n: number;
  stop?: number;
}

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-journal-'));
  file = join(dir, 'sub', 'executions.json');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const journalOf = (records: Map<string, Rec>, keep = (_r: Rec, _now: number) => true) =>
  new ExecutionJournal<Rec>(file, records, (r) => r.id, keep, 5);
const lines = async () => (await readFile(file, 'utf8')).split('\n').filter(Boolean).length;

describe('the executions journal', () => {
  it('appends the changes of one moment as one line per record; a reload gets the latest of each', async () => {
    const records = new Map<string, Rec>();
    const journal = journalOf(records);
    records.set('a', { id: 'a', n: 1 });
    records.set('b', { id: 'b', n: 1 });
    for (let i = 0; i < 100; i++) journal.changed('a');
    journal.changed('b');
    await journal.flush();
    expect(await lines()).toBe(2);
    (records.get('a') as Rec).n = 2;
    journal.changed('a');
    await new Promise((r) => setTimeout(r, 50));
    expect(await lines()).toBe(3);
    expect(await journalOf(new Map()).load()).toEqual([
      { id: 'a', n: 2 },
      { id: 'b', n: 1 },
    ]);
  });

  it('rewrites the file once it holds more than twice its records and a margin: its lines stay bounded', async () => {
    const records = new Map<string, Rec>([['a', { id: 'a', n: 0 }]]);
    const journal = journalOf(records);
    for (let i = 1; i <= 1500; i++) {
      (records.get('a') as Rec).n = i;
      journal.changed('a');
      await journal.flush();
    }
    expect(await lines()).toBeLessThan(1003);
    expect(await journalOf(new Map()).load()).toEqual([{ id: 'a', n: 1500 }]);
  });

  it('compacts at load: one line per record, and drops from file and map what keep refuses', async () => {
    const records = new Map<string, Rec>([
      ['old', { id: 'old', n: 1, stop: 10 }],
      ['new', { id: 'new', n: 1, stop: Date.now() }],
      ['running', { id: 'running', n: 1 }],
    ]);
    const keep = (r: Rec, now: number) => r.stop === undefined || now - r.stop < 60_000;
    const journal = journalOf(records, keep);
    for (const id of records.keys()) journal.changed(id);
    await journal.flush();
    await journal.compact();
    expect([...records.keys()]).toEqual(['new', 'running']);
    expect((await journalOf(new Map()).load()).map((r) => r.id)).toEqual(['new', 'running']);
  });

  it('reads the former one-document store, skips a last line cut short, and refuses a bad line before it', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(file, JSON.stringify({ executions: [{ id: 'x', n: 7 }] }));
    expect(await journalOf(new Map()).load()).toEqual([{ id: 'x', n: 7 }]);
    await writeFile(file, '{"id":"a","n":1}\n{"id":"a","n":2}\n{"id":"b","n"');
    expect(await journalOf(new Map()).load()).toEqual([{ id: 'a', n: 2 }]);
    await writeFile(file, '{"id":"a","n":1}\n{"id":\n{"id":"b","n":1}\n');
    await expect(journalOf(new Map()).load()).rejects.toThrow(/line 2 is not JSON/);
  });

  it('a change noted while a write is finishing is written too, without another call', async () => {
    const records = new Map<string, Rec>([
      ['a', { id: 'a', n: 1 }],
      ['b', { id: 'b', n: 1 }],
    ]);
    const journal = journalOf(records);
    journal.changed('a');
    const first = journal.flush();
    // Noted after the write began: the flush in flight or the one it schedules takes it.
    journal.changed('b');
    await first;
    await new Promise((r) => setTimeout(r, 50));
    expect((await journalOf(new Map()).load()).map((r) => r.id).sort()).toEqual(['a', 'b']);
  });
});
