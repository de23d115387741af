/**
 * Reading processes from Linux's /proc: who a pid is (start time, command line, group) and
 * which processes are in a group. The runner runs on Linux hypervisors only; elsewhere these
 * answer "unknown", and callers then leave processes alone.
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

/** What identifies a process beyond its pid, which the kernel reuses. */
export interface ProcessIdentity {
  pid: number;
  /** One-letter state (`R`, `S`, `Z` for a zombie, ...). */
  state: string;
  /** Process group id. */
  pgrp: number;
  /** Start time in clock ticks since boot: a reused pid gets a later one. */
  startTime: string;
  /** argv as the process shows it (empty for zombies and kernel threads). */
  cmdline: string[];
}

/** The process `pid` as /proc shows it now, or undefined when there is none (or no /proc). */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  try {
    const stat = parseStat(pid, readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (!stat) return undefined;
    return { ...stat, cmdline: parseCmdline(readFileSync(`/proc/${pid}/cmdline`)) };
  } catch {
    return undefined;
  }
}

/**
 * Which of `pgids` still have a live (not zombie) member, from one scan of /proc. While a group
 * has a member the kernel does not hand its number out as a new pid, so a group seen alive
 * since it was verified is still the same group.
 */
export async function liveGroups(pgids: Iterable<number>): Promise<Set<number>> {
  const wanted = new Set(pgids);
  const alive = new Set<number>();
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return alive;
  }
  await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map(async (name) => {
        // A process may end between readdir and this read: then it is simply not a member.
        const stat = parseStat(Number(name), await readFile(`/proc/${name}/stat`, 'utf8').catch(() => ''));
        if (stat && stat.state !== 'Z' && wanted.has(stat.pgrp)) alive.add(stat.pgrp);
      }),
  );
  return alive;
}

/**
 * Fields of /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so fields are counted from the LAST `)`.
 */
function parseStat(pid: number, text: string): Omit<ProcessIdentity, 'cmdline'> | undefined {
  const end = text.lastIndexOf(')');
  if (end < 0) return undefined;
  // Fields from 3 (state) on: state is index 0, pgrp (field 5) index 2, starttime (22) index 19.
  const fields = text.slice(end + 2).split(' ');
  const state = fields[0];
  const pgrp = Number(fields[2]);
  const startTime = fields[19];
  if (!state || !Number.isInteger(pgrp) || !startTime) return undefined;
  return { pid, state, pgrp, startTime };
}

function parseCmdline(raw: Buffer): string[] {
  const parts = raw.toString('utf8').split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}
