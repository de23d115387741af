/**
 * The process groups the runner started, in `<state>/process-groups.json` (0600), so that after
 * a SIGKILL or a crash the next runner stops the tools the dead one left running (a restic still
 * writing into the repository, an nbdcopy still reading a disk) before reconcile cleans disks
 * and locks. drivers/exec.ts starts every tool as the leader of its own group and announces it
 * through {@link ProcessGroupHooks}; the registry records each group with its leader's identity
 * (start time from /proc/<pid>/stat and the command line from /proc/<pid>/cmdline, plus the boot
 * id) and drops it when the leader exits.
 *
 * The file is rewritten whole (temp file + rename: never half written) synchronously from the
 * hook, so a group is on disk before exec returns to its caller. No fsync: the file must survive
 * the runner's death, which the page cache does; a power loss takes the tools down with it.
 *
 * Groups read at open are the previous run's leftovers; they stay in the file until
 * {@link stopLeftoverGroups} settled them, so a runner dying again during reconcile loses none.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { Command, ProcessGroupHooks } from '#drivers/exec.ts';
import type { Logger } from './log.ts';
import { processIdentity } from './proc.ts';

const GroupRecord = z.object({
  pgid: z.number().int().positive(),
  /** Leader's start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  startTime: z.string().min(1),
  /** Leader's argv as /proc showed it right after exec (never holds a secret: see exec.ts). */
  cmdline: z.array(z.string()),
  bootId: z.string(),
  at: z.string(),
});
/** One process group a runner started. */
export type GroupRecord = z.infer<typeof GroupRecord>;

const RegistryFile = z.object({ v: z.literal(1), groups: z.array(GroupRecord) });

/** Where the registry lives in the state folder. */
export const PROCESS_GROUPS_FILE = 'process-groups.json';

export class ProcessRegistry {
  private readonly live = new Map<number, GroupRecord>();
  private leftover: GroupRecord[];

  /** Give these to `watchProcessGroups` (drivers/exec.ts). */
  readonly hooks: ProcessGroupHooks = {
    onSpawn: (pgid, command) => this.add(pgid, command),
    onExit: (pgid) => this.remove(pgid),
  };

  private constructor(
    readonly file: string,
    readonly bootId: string,
    leftover: GroupRecord[],
    private readonly log: Logger,
  ) {
    this.leftover = leftover;
  }

  /**
   * Reads what the previous run left in `file` (a missing or unreadable file leaves nothing:
   * logged, never fatal, since the runner must start to clean up at all).
   */
  static open(file: string, log: Logger): ProcessRegistry {
    let leftover: GroupRecord[] = [];
    try {
      const parsed = RegistryFile.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (parsed.success) leftover = parsed.data.groups;
      else log('warn', 'process group registry unreadable, ignored', { file });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        log('warn', 'process group registry unreadable, ignored', { file, error: (error as Error).message });
      }
    }
    return new ProcessRegistry(file, readBootId(), leftover, log);
  }

  /** Groups the previous run recorded and nobody settled yet. */
  leftovers(): readonly GroupRecord[] {
    return this.leftover;
  }

  /** Groups of this run whose leader still runs. */
  running(): readonly GroupRecord[] {
    return [...this.live.values()];
  }

  /** Forgets leftovers that were dealt with (stopped, gone, or not ours any more). */
  settle(records: readonly GroupRecord[]): void {
    const done = new Set(records);
    this.leftover = this.leftover.filter((r) => !done.has(r));
    this.save();
  }

  private add(pgid: number, command: Command): void {
    const identity = processIdentity(pgid);
    if (!identity) {
      // Gone already (or no /proc): nothing a successor could verify, so nothing to record.
      this.log('debug', 'process group not recorded: its leader is gone', { pgid, file: command.file });
      return;
    }
    this.live.set(pgid, {
      pgid,
      startTime: identity.startTime,
      cmdline: identity.cmdline,
      bootId: this.bootId,
      at: new Date().toISOString(),
    });
    this.save();
  }

  private remove(pgid: number): void {
    if (this.live.delete(pgid)) this.save();
  }

  private save(): void {
    const body: z.infer<typeof RegistryFile> = { v: 1, groups: [...this.leftover, ...this.live.values()] };
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify(body)}\n`, { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch (error) {
      this.log('warn', 'process group registry not written', { error: (error as Error).message });
    }
  }
}

/** This boot's id: records of another boot name processes that cannot exist any more. */
function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}
