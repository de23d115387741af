/**
 * CPU of the local stack's process tree, split by role: the control plane (the supervisor with
 * its in-process gateway, Lambda worker threads, Step Functions interpreter, scheduler and SQS
 * emulator; the DynamoDB Local JVM in its namespace) and the runner with its children (restic,
 * ssh, qemu-img, rsync...). Read from /proc/<pid>/stat of every process under the supervisor,
 * so a process started or ended between two snapshots is counted too (an ended child's CPU
 * moves into its parent's cutime+cstime, which is summed with the parent's own).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPids } from '#local/pids.ts';
import { round } from './measure.ts';

/** Where a process of the stack belongs. */
export type Role = 'supervisor' | 'dynamodb' | 'runner' | 'other';

/** One process as /proc/<pid>/stat shows it. */
export interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime+stime, seconds. */
  self: number;
  /** cutime+cstime (its waited-for children), seconds. */
  children: number;
}

/** A process of the stack with its role. */
export interface StackProc extends ProcStat {
  role: Role;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const HZ = 100;

/** Parses one /proc/<pid>/stat line; undefined when it is not one. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  // Fields after the command name, which may hold spaces: state is field 3, ppid 4, utime 14.
  const fields = text.slice(close + 2).split(' ');
  const field = (i: number) => Number(fields[i - 3] ?? 0);
  return {
    pid: Number(text.slice(0, open).trim()),
    ppid: field(4),
    comm: text.slice(open + 1, close),
    self: (field(14) + field(15)) / HZ,
    children: (field(16) + field(17)) / HZ,
  };
}

/** Every process readable in /proc now. */
async function allProcesses(): Promise<ProcStat[]> {
  const entries = await readdir('/proc');
  const stats = await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map((e) =>
        readFile(join('/proc', e, 'stat'), 'utf8').then(
          (text) => parseStat(text),
          () => undefined,
        ),
      ),
  );
  return stats.filter((s): s is ProcStat => s !== undefined);
}

/**
 * The processes under `root` (itself included), each with the role of the nearest named
 * ancestor in `named` (pid → role); the root's own role is `supervisor`.
 */
export function treeOf(
  all: readonly ProcStat[],
  root: number,
  named: ReadonlyMap<number, Role>,
): StackProc[] {
  const kids = new Map<number, ProcStat[]>();
  for (const p of all) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p]);
  const top = all.find((p) => p.pid === root);
  if (!top) return [];
  const out: StackProc[] = [];
  const walk = (p: ProcStat, role: Role) => {
    const own = named.get(p.pid) ?? role;
    out.push({ ...p, role: own });
    for (const k of kids.get(p.pid) ?? []) walk(k, own === 'supervisor' ? 'other' : own);
  };
  walk(top, 'supervisor');
  return out;
}

/** `root` and every process under it now: the root as `supervisor`, the rest as `other`. */
export async function processTree(root: number): Promise<StackProc[]> {
  return treeOf(await allProcesses(), root, new Map());
}

/** The stack of `home` now (empty when it does not run). */
export async function stackProcesses(home: string): Promise<StackProc[]> {
  const pids = await readPids(join(home, 'pids.json'));
  if (!pids) return [];
  const named = new Map<number, Role>();
  if (pids.children.dynamodb) named.set(pids.children.dynamodb, 'dynamodb');
  if (pids.children.runner) named.set(pids.children.runner, 'runner');
  return treeOf(await allProcesses(), pids.supervisor, named);
}

/** CPU seconds used between two snapshots, by role and by process. */
export interface CpuUse {
  byRole: Record<Role, number>;
  /** Control plane: every role but the runner's. */
  control: number;
  /** Per process still alive at the end (pid, command, role), seconds, largest first. */
  byProcess: { pid: number; comm: string; role: Role; seconds: number }[];
}

const total = (p: ProcStat) => p.self + p.children;

/**
 * What the stack used between `before` and `after`: per role the sum of the processes' own and
 * waited-for children's CPU at the end minus the same at the start (a process that ended in
 * between shows in its parent's children figure).
 */
export function cpuBetween(before: readonly StackProc[], after: readonly StackProc[]): CpuUse {
  const byRole: Record<Role, number> = { supervisor: 0, dynamodb: 0, runner: 0, other: 0 };
  for (const p of after) byRole[p.role] += total(p);
  for (const p of before) byRole[p.role] -= total(p);
  for (const role of Object.keys(byRole) as Role[]) byRole[role] = round(Math.max(0, byRole[role]), 2);
  const start = new Map(before.map((p) => [p.pid, p]));
  const byProcess = after
    .map((p) => ({
      pid: p.pid,
      comm: p.comm,
      role: p.role,
      seconds: round(total(p) - (start.get(p.pid) ? total(start.get(p.pid) as ProcStat) : 0), 2),
    }))
    .sort((a, b) => b.seconds - a.seconds);
  return {
    byRole,
    control: round(byRole.supervisor + byRole.dynamodb + byRole.other, 2),
    byProcess,
  };
}

/** Measures the stack of `home` around `fn`. */
export async function measureStackCpu<T>(
  home: string,
  fn: () => Promise<T>,
): Promise<{ value: T; cpu: CpuUse }> {
  const before = await stackProcesses(home);
  const value = await fn();
  return { value, cpu: cpuBetween(before, await stackProcesses(home)) };
}

/** One line per role and the busiest processes, for the benchmark's log. */
export function describeCpu(cpu: CpuUse, top = 6): string {
  const roles = Object.entries(cpu.byRole)
    .map(([r, s]) => `${r} ${s.toFixed(2)}`)
    .join(', ');
  const procs = cpu.byProcess
    .filter((p) => p.seconds > 0)
    .slice(0, top)
    .map((p) => `${p.comm}[${p.pid}, ${p.role}] ${p.seconds.toFixed(2)}`)
    .join(', ');
  return `control plane ${cpu.control.toFixed(2)} s (${roles}); busiest: ${procs || 'none'}`;
}
