/**
 * The runner's journal of task ids: append-only JSON lines in `<state>/journal.jsonl` (0600),
 * one `{taskId, state: started|done|failed, result|error, at}` per step, flushed to disk before
 * the queue message is deleted. SQS delivers at least once and a state machine may hand the same
 * task out again with a new token; the journal makes sure a task runs once and a repeated
 * delivery is answered with the outcome it already had.
 *
 * A `started` line also holds the task (its secrets only sealed to this host's key, as they
 * travel) and its token, so that after a crash {@link Journal.unfinished} tells reconcile what to clean and
 * whom to tell.
 */
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { TRANSIENT_ERRORS } from '#core/errors.ts';

const ErrorShape = z.object({ name: z.string(), message: z.string() });
export type JournalError = z.infer<typeof ErrorShape>;

const Line = z.discriminatedUnion('state', [
  z.object({
    taskId: z.string(),
    state: z.literal('started'),
    at: z.string(),
    kind: z.string(),
    token: z.string(),
    /** The task message minus its token. */
    task: z.record(z.string(), z.unknown()),
  }),
  z.object({ taskId: z.string(), state: z.literal('done'), at: z.string(), result: z.unknown() }),
  z.object({ taskId: z.string(), state: z.literal('failed'), at: z.string(), error: ErrorShape }),
]);
type Line = z.infer<typeof Line>;

/** Everything the journal knows of one task id. */
export interface JournalRecord {
  taskId: string;
  state: 'started' | 'done' | 'failed';
  kind: string;
  token: string;
  task: Record<string, unknown>;
  startedAt: string;
  endedAt?: string;
  result?: unknown;
  error?: JournalError;
}

/** What to do with a delivered task, given the journal. */
export type Admission =
  | { action: 'run' }
  | { action: 'answer'; outcome: { ok: true; result: unknown } | { ok: false; error: JournalError } }
  | { action: 'ignore'; reason: string };

/** Ended tasks older than this are dropped when the journal is compacted at open. */
const KEEP_ENDED_MS = 30 * 24 * 3600 * 1000;
/** Compact at open once the file has this many more lines than live records need. */
const COMPACT_SLACK = 1000;

export class Journal {
  private readonly records = new Map<string, JournalRecord>();
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(readonly file: string) {}

  /** Reads (and if worthwhile compacts) the journal at `file`, creating its folder. */
  static async open(file: string, now = Date.now()): Promise<Journal> {
    const journal = new Journal(file);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    let lines = 0;
    for (const raw of text.split('\n')) {
      if (!raw.trim()) continue;
      lines++;
      // A line torn by a crash mid-write is skipped: its task then looks not started or running.
      const parsed = Line.safeParse(safeJson(raw));
      if (parsed.success) journal.apply(parsed.data);
    }
    const cutoff = now - KEEP_ENDED_MS;
    for (const [id, record] of journal.records) {
      if (record.endedAt && Date.parse(record.endedAt) < cutoff) journal.records.delete(id);
    }
    if (lines > journal.records.size * 2 + COMPACT_SLACK) await journal.compact();
    return journal;
  }

  /** The record of `taskId`, if any. */
  get(taskId: string): JournalRecord | undefined {
    return this.records.get(taskId);
  }

  /**
   * Decides a delivery: a new task runs; one running is ignored; one that ended is answered
   * with the same outcome, except a transient failure (DatastoreLocked, ...), which the state machine
   * retries under the same task id and which therefore runs again.
   */
  admit(taskId: string): Admission {
    const record = this.records.get(taskId);
    if (!record) return { action: 'run' };
    if (record.state === 'started') return { action: 'ignore', reason: 'already running' };
    if (record.state === 'done') return { action: 'answer', outcome: { ok: true, result: record.result } };
    const error = record.error ?? { name: 'Error', message: 'failed' };
    if ((TRANSIENT_ERRORS as readonly string[]).includes(error.name)) return { action: 'run' };
    return { action: 'answer', outcome: { ok: false, error } };
  }

  /** Records that the task starts; durable when the promise resolves. */
  start(task: { taskId: string; kind: string; token: string } & Record<string, unknown>): Promise<void> {
    const { token, ...rest } = task;
    return this.append({
      taskId: task.taskId,
      state: 'started',
      at: new Date().toISOString(),
      kind: task.kind,
      token,
      task: rest,
    });
  }

  /** Records the task's successful result. */
  done(taskId: string, result: unknown): Promise<void> {
    return this.append({ taskId, state: 'done', at: new Date().toISOString(), result });
  }

  /** Records the task's failure (the error as reported: name and message). */
  failed(taskId: string, error: JournalError): Promise<void> {
    return this.append({ taskId, state: 'failed', at: new Date().toISOString(), error });
  }

  /** Tasks started and never ended: what a crash left (read at start, before polling). */
  unfinished(): JournalRecord[] {
    return [...this.records.values()].filter((r) => r.state === 'started');
  }

  private apply(line: Line): void {
    if (line.state === 'started') {
      this.records.set(line.taskId, {
        taskId: line.taskId,
        state: 'started',
        kind: line.kind,
        token: line.token,
        task: line.task,
        startedAt: line.at,
      });
      return;
    }
    const record = this.records.get(line.taskId);
    // An end without a start (the start was compacted away or torn) still answers redeliveries.
    const base: JournalRecord = record ?? {
      taskId: line.taskId,
      state: line.state,
      kind: 'unknown',
      token: '',
      task: {},
      startedAt: line.at,
    };
    const next: JournalRecord = { ...base, state: line.state, endedAt: line.at };
    if (line.state === 'done') {
      next.result = line.result;
      delete next.error;
    } else {
      next.error = line.error;
      delete next.result;
    }
    this.records.set(line.taskId, next);
  }

  /** Appends one line with fsync; appends are serialized so lines never interleave. */
  private append(line: Line): Promise<void> {
    this.apply(line);
    const write = this.chain.then(async () => {
      const handle = await open(this.file, 'a', 0o600);
      try {
        await handle.write(`${JSON.stringify(line)}\n`);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    });
    this.chain = write.catch(() => {});
    return write;
  }

  /** Rewrites the file with the live records only (temp file + rename: never half written). */
  private async compact(): Promise<void> {
    const lines: Line[] = [];
    for (const r of this.records.values()) {
      // An ended task's token is of no use any more: not kept.
      const token = r.state === 'started' ? r.token : '';
      lines.push({ taskId: r.taskId, state: 'started', at: r.startedAt, kind: r.kind, token, task: r.task });
      if (r.state === 'done')
        lines.push({ taskId: r.taskId, state: 'done', at: r.endedAt ?? r.startedAt, result: r.result });
      if (r.state === 'failed' && r.error) {
        lines.push({ taskId: r.taskId, state: 'failed', at: r.endedAt ?? r.startedAt, error: r.error });
      }
    }
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, lines.map((l) => `${JSON.stringify(l)}\n`).join(''), { mode: 0o600 });
    await rename(tmp, this.file);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
