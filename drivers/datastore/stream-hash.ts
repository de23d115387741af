/**
 * The sha256 of a disk on its way to a tool, computed while it streams and without a copy
 * through this process or onto the disk: `tee FIFO` sits in the pipe before the tool, and
 * `openssl dgst` (SHA instructions of the CPU) reads the named pipe, which lies in a private
 * 0700 folder and holds no bytes at rest.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Command, run } from '../exec.ts';

/** `openssl dgst -sha256 -r` output: `<hex> *<path>`. */
export function parseDigest(stdout: string, what: string): string {
  const hash = stdout.trim().split(/\s/)[0] ?? '';
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`openssl dgst gave no sha256 for ${what}`);
  return hash;
}

/** One stream's hash: {@link tee} goes in its pipe, {@link digest} answers once it ended. */
export class StreamHash {
  private readonly stop = new AbortController();
  private constructor(
    private readonly dir: string,
    private readonly fifo: string,
  ) {}

  /** Makes the named pipe (removed by {@link close}). */
  static async create(): Promise<StreamHash> {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-hash-'));
    const fifo = join(dir, 'stream');
    try {
      await run({ file: 'mkfifo', args: ['-m', '600', '--', fifo] });
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    return new StreamHash(dir, fifo);
  }

  /** The pipe stage: copies its stdin to its stdout and to the hash. */
  get tee(): Command {
    return { file: 'tee', args: ['--', this.fifo] };
  }

  /**
   * Starts the hash; it resolves once `tee` has ended. Call it before the pipe starts, and
   * {@link abort} when the pipe fails: a `tee` that never opened the fifo would leave it waiting.
   */
  digest(): Promise<string> {
    return run(
      { file: 'openssl', args: ['dgst', '-sha256', '-r', this.fifo] },
      { signal: this.stop.signal },
    ).then(({ stdout }) => parseDigest(stdout, 'the stream'));
  }

  /** Kills the hash (the pipe failed or was cancelled). */
  abort(): void {
    this.stop.abort();
  }

  async close(): Promise<void> {
    this.abort();
    await rm(this.dir, { recursive: true, force: true });
  }
}
