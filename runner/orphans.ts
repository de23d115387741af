/**
 * Stops the process groups a dead runner left running (see process-registry.ts). A recorded
 * group is stopped only while its leader is still the very process recorded: same boot, same
 * start time, same command line (or its tail, see {@link sameCommand}). A pid the kernel has
 * since given to another program is left alone. Stopping is SIGTERM to the whole group (restic then removes its own lock), then
 * SIGKILL for what is still there after the grace period.
 */
import type { Logger } from './log.ts';
import { liveGroups, processIdentity } from './proc.ts';
import type { GroupRecord, ProcessRegistry } from './process-registry.ts';

/** What became of one recorded group. */
export type OrphanOutcome =
  /** Leader no longer running (or recorded before a reboot): nothing to stop. */
  | 'gone'
  /** The pid now belongs to another process: left alone. */
  | 'not ours'
  /** Ended after SIGTERM. */
  | 'stopped'
  /** Ended only after SIGKILL. */
  | 'killed'
  /** Still there after SIGKILL (stuck in the kernel, or not ours to signal). */
  | 'survived';

export interface OrphanReport {
  pgid: number;
  command: string;
  outcome: OrphanOutcome;
}

export interface StopOrphansOptions {
  log: Logger;
  /** Time between SIGTERM and SIGKILL (default 5 s). */
  graceMs?: number;
}

const POLL_MS = 50;
const AFTER_KILL_MS = 2000;
/** How long an ended leader may stay unreaped (a zombie) before the cleanup goes on anyway. */
const REAP_WAIT_MS = 5000;

/** Stops every leftover group of `registry` still ours, then settles them in the registry. */
export async function stopLeftoverGroups(
  registry: ProcessRegistry,
  { log, graceMs = 5000 }: StopOrphansOptions,
): Promise<OrphanReport[]> {
  const records = registry.leftovers();
  const outcomes = new Map<GroupRecord, OrphanOutcome>();
  const targets: GroupRecord[] = [];
  for (const record of records) {
    const verdict = judge(record, registry.bootId);
    if (verdict === 'ours') targets.push(record);
    else outcomes.set(record, verdict);
  }
  for (const record of targets) signal(record, 'SIGTERM');
  let alive = await waitForEnd(targets, graceMs);
  for (const record of targets) if (!alive.has(record.pgid)) outcomes.set(record, 'stopped');
  const stubborn: GroupRecord[] = [];
  for (const record of targets) {
    if (!alive.has(record.pgid) || outcomes.has(record)) continue;
    if (stillOurs(record)) stubborn.push(record);
    else outcomes.set(record, 'not ours');
  }
  if (stubborn.length) {
    for (const record of stubborn) signal(record, 'SIGKILL');
    alive = await waitForEnd(stubborn, AFTER_KILL_MS);
  }
  for (const record of targets) {
    if (!outcomes.has(record)) outcomes.set(record, alive.has(record.pgid) ? 'survived' : 'killed');
  }
  // An ended leader whose new parent (init, the tool's orphans' reaper) has not reaped it yet is
  // a zombie, and its pid still answers kill(pid, 0): restic's `unlock`, run next, would take a
  // zombie restic for a live one and keep its lock. Wait for the reaper (seconds at most).
  const ended = records.filter((r) => r.bootId === registry.bootId && outcomes.get(r) !== 'survived');
  const unreaped = await waitForReaped(ended, REAP_WAIT_MS);
  if (unreaped.length) {
    log('warn', 'tools left by the previous runner ended but are not reaped yet', { pids: unreaped });
  }

  const reports = records.map((record) => ({
    pgid: record.pgid,
    command: record.cmdline.join(' '),
    outcome: outcomes.get(record) ?? 'gone',
  }));
  for (const report of reports) {
    if (report.outcome === 'gone') continue;
    // Command lines never hold secrets (drivers/exec.ts), so they may be logged.
    const level = report.outcome === 'not ours' ? 'info' : report.outcome === 'survived' ? 'error' : 'warn';
    log(level, `process group left by the previous runner: ${report.outcome}`, { ...report });
  }
  registry.settle(records);
  return reports;
}

/** Whether the recorded leader still runs as recorded. */
function judge(record: GroupRecord, bootId: string): 'ours' | 'gone' | 'not ours' {
  if (record.bootId !== bootId) return 'gone';
  const now = processIdentity(record.pgid);
  if (!now || now.state === 'Z') return 'gone';
  return now.startTime === record.startTime && sameCommand(record.cmdline, now.cmdline) ? 'ours' : 'not ours';
}

/**
 * The command line now is the recorded one, or its tail: a wrapper (`nice -n 10 ionice -c2 -n 7
 * restic ...`) execs the tool it wraps in the same process, and the registry may have read /proc
 * before that exec. The tool may itself be a script, or exec its program by a full path (a
 * `restic` on PATH that runs `/usr/bin/restic "$@"`): its first word, or its interpreter and
 * script, then differ from what was recorded, so what must match is the arguments after them, a
 * tail of the recorded arguments, never empty. The start time, which exec does not change, is
 * what tells a reused pid apart; this check only keeps a recorded pid from naming another command.
 */
export function sameCommand(recorded: readonly string[], now: readonly string[]): boolean {
  if (now.length === 0) return false;
  if (isTail(recorded, now)) return true;
  // Without the program (exec'd by another path) or without an interpreter and its script.
  return [1, 2].some((skip) => {
    const args = now.slice(skip);
    return args.length > 0 && args.length < recorded.length && isTail(recorded, args);
  });
}

function isTail(line: readonly string[], tail: readonly string[]): boolean {
  if (tail.length > line.length) return false;
  const offset = line.length - tail.length;
  return tail.every((arg, i) => arg === line[offset + i]);
}

/**
 * Checked again before SIGKILL: a leader that ended may leave members (still ours: the group
 * number cannot be reused while they live), but a leader now of another start time is not ours.
 */
function stillOurs(record: GroupRecord): boolean {
  const now = processIdentity(record.pgid);
  return !now || now.state === 'Z' || now.startTime === record.startTime;
}

function signal(record: GroupRecord, sig: NodeJS.Signals): void {
  try {
    process.kill(-record.pgid, sig);
  } catch {
    // The group ended meanwhile (ESRCH), or is not ours to signal (EPERM): reported by the wait.
  }
}

/**
 * Polls until no leader of `records` is left as a zombie of its recorded start, or `ms` passed;
 * answers the pids still unreaped. A pid that now runs anything else is no longer the leader's.
 */
async function waitForReaped(records: readonly GroupRecord[], ms: number): Promise<number[]> {
  const end = Date.now() + ms;
  for (;;) {
    const unreaped = records
      .filter((r) => {
        const now = processIdentity(r.pgid);
        return now?.state === 'Z' && now.startTime === r.startTime;
      })
      .map((r) => r.pgid);
    if (unreaped.length === 0 || Date.now() >= end) return unreaped;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Polls until every group ended or `ms` passed; answers the pgids still alive. */
async function waitForEnd(records: readonly GroupRecord[], ms: number): Promise<Set<number>> {
  const pgids = records.map((r) => r.pgid);
  if (pgids.length === 0) return new Set();
  const end = Date.now() + ms;
  for (;;) {
    const alive = await liveGroups(pgids);
    if (alive.size === 0 || Date.now() >= end) return alive;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
