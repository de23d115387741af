/**
 * A map of records persisted as a journal of JSON lines: a changed record is appended as one
 * line (the changes of one moment together, one append), the last line of a key wins when the
 * file is read, and the file is rewritten whole, through a temporary file and a rename, only at
 * load and once it holds more than twice as many lines as records (plus a margin), which keeps
 * a change's cost at its own record's size whatever the map holds. A rewrite also drops the
 * records `keep` no longer wants, from the file and the map. A line cut short by a crash while
 * it was appended (the last one) is skipped; a bad line elsewhere is an error.
 */
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Appended lines beyond twice the records before the file is rewritten. */
const REWRITE_MARGIN = 1000;

/** Wait before writing again after a write failed. */
const RETRY_MS = 5000;

export class ExecutionJournal<T> {
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Lines in the file now, superseded ones included. */
  private lines = 0;

  constructor(
    private readonly file: string,
    /** The live records, by key (the journal drops from it what `keep` refuses at a rewrite). */
    private readonly records: Map<string, T>,
    private readonly keyOf: (record: T) => string,
    private readonly keep: (record: T, now: number) => boolean,
    private readonly delayMs = 50,
  ) {}

  /** The records the file holds (its former one-document form, `{"executions":[...]}`, too). */
  async load(): Promise<T[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`cannot read ${this.file}: ${(err as Error).message}`);
    }
    if (text.startsWith('{"executions":')) {
      return (JSON.parse(text) as { executions?: T[] }).executions ?? [];
    }
    const latest = new Map<string, T>();
    const lines = text.split('\n');
    for (const [index, line] of lines.entries()) {
      if (!line) continue;
      let record: T;
      try {
        record = JSON.parse(line) as T;
      } catch {
        if (index === lines.length - 1) continue;
        throw new Error(`cannot read ${this.file}: line ${index + 1} is not JSON`);
      }
      latest.set(this.keyOf(record), record);
    }
    return [...latest.values()];
  }

  /** Rewrites the file from the records (after load: one line each, expired ones dropped). */
  async compact(): Promise<void> {
    this.dirty.clear();
    await this.rewrite();
  }

  /** Notes that the record of `key` changed: appended shortly, with the others of that moment. */
  changed(key: string): void {
    this.dirty.add(key);
    if (this.timer || this.flushing) return;
    this.timer = setTimeout(() => void this.flush(), this.delayMs);
  }

  /** Writes every change noted so far (resolves once they are in the file, or failed to be). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing ??= this.drain().then((ok) => {
      this.flushing = undefined;
      // A change noted while the last write finished, or writes that failed: written later
      // (a failing disk is retried every few seconds, not every few milliseconds).
      if (this.dirty.size > 0 && !this.timer) {
        this.timer = setTimeout(() => void this.flush(), ok ? this.delayMs : RETRY_MS);
      }
    });
    await this.flushing;
  }

  /** Writes the changes noted until none is left; false when a write failed. */
  private async drain(): Promise<boolean> {
    while (this.dirty.size > 0) {
      const keys = [...this.dirty];
      this.dirty.clear();
      try {
        if (this.lines + keys.length > 2 * this.records.size + REWRITE_MARGIN) {
          await this.rewrite();
          continue;
        }
        const text = keys
          .map((key) => this.records.get(key))
          .filter((record): record is T => record !== undefined)
          .map((record) => `${JSON.stringify(record)}\n`)
          .join('');
        await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
        await appendFile(this.file, text, { mode: 0o600 });
        this.lines += keys.length;
      } catch (err) {
        // Kept for the next change's flush; the records stay right in memory meanwhile.
        for (const key of keys) this.dirty.add(key);
        console.error(JSON.stringify({ level: 'error', msg: 'cannot save executions', error: String(err) }));
        return false;
      }
    }
    return true;
  }

  private async rewrite(): Promise<void> {
    const now = Date.now();
    for (const [key, record] of this.records) if (!this.keep(record, now)) this.records.delete(key);
    const text = [...this.records.values()].map((record) => `${JSON.stringify(record)}\n`).join('');
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, this.file);
    this.lines = this.records.size;
  }
}
