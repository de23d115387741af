import { describe, expect, it } from 'vitest';
import { cpuBetween, parseStat, type StackProc, treeOf } from './control-cpu.ts';
import { observedSummary, rcharOf } from './first-byte.ts';

// A /proc/<pid>/stat line whose command name holds spaces and parentheses.
const STAT = '4242 (C2 Compiler) (x)) S 4200 4242 4242 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 9 0 1 2 3';

describe('parseStat', () => {
  it('reads pid, parent, command and CPU seconds past a command name with spaces and parentheses', () => {
    expect(parseStat(STAT)).toEqual({
      pid: 4242,
      ppid: 4200,
      comm: 'C2 Compiler) (x)',
      self: 3,
      children: 0.5,
    });
  });
  it('answers undefined for what is not a stat line', () => {
    expect(parseStat('')).toBeUndefined();
  });
});

const proc = (pid: number, ppid: number, self: number, children = 0) => ({
  pid,
  ppid,
  comm: `p${pid}`,
  self,
  children,
});

describe('treeOf', () => {
  it('gives each process under the supervisor the role of its nearest named ancestor', () => {
    const all = [
      proc(1, 0, 0),
      proc(10, 1, 1),
      proc(11, 10, 1),
      proc(12, 11, 1),
      proc(13, 10, 1),
      proc(14, 13, 1),
      proc(99, 1, 5),
    ];
    const roles = new Map([
      [11, 'dynamodb' as const],
      [13, 'runner' as const],
    ]);
    const tree = treeOf(all, 10, roles);
    expect(Object.fromEntries(tree.map((p) => [p.pid, p.role]))).toEqual({
      10: 'supervisor',
      11: 'dynamodb',
      12: 'dynamodb',
      13: 'runner',
      14: 'runner',
    });
  });
});

describe('cpuBetween', () => {
  it('counts a child that ended in between once, through its parent, and leaves the runner out of the control plane', () => {
    const role = (p: ReturnType<typeof proc>, r: StackProc['role']): StackProc => ({ ...p, role: r });
    const before = [
      role(proc(10, 1, 2), 'supervisor'),
      role(proc(13, 10, 1), 'runner'),
      role(proc(20, 13, 4), 'runner'),
    ];
    // restic (20) ended after 1 more second: its 5 s are now the runner's children figure.
    const after = [role(proc(10, 1, 2.5), 'supervisor'), role(proc(13, 10, 1.25, 5), 'runner')];
    const use = cpuBetween(before, after);
    expect(use.byRole).toEqual({ supervisor: 0.5, dynamodb: 0, runner: 1.25, other: 0 });
    expect(use.control).toBe(0.5);
  });
});

describe('first byte', () => {
  it('reads rchar from /proc/<pid>/io', () => {
    expect(rcharOf('rchar: 65536\nwchar: 12\nsyscr: 3\n')).toBe(65536);
    expect(rcharOf('')).toBe(0);
  });
  it('reports the medians over the rounds of the restic run, to READY and to its data stored, and the rsync run beside', () => {
    const cpu = (control: number) => ({
      control,
      byRole: { supervisor: control, dynamodb: 0, runner: 0, other: 0 },
      byProcess: [],
    });
    const restic = (
      whole: number,
      stored: number | undefined,
      firstByteS: number | undefined,
      total: number,
    ) => ({
      value: 0,
      firstByteS,
      cpu: cpu(whole),
      ...(stored !== undefined && { cpuAt: { stored: cpu(stored) } }),
      dynamodb: { total } as never,
    });
    expect(
      observedSummary({
        restic: [restic(2.2, 1.5, 0.5, 160), restic(1.2, 0.7, 0.386, 130), restic(1.1, undefined, 0.41, 128)],
        rsync: [{ value: 0, firstByteS: undefined, cpu: cpu(0.4) }],
      }),
    ).toEqual({
      control_cpu_s: 1.2,
      control_cpu_spread: { min: 1.1, max: 2.2 },
      // A round without the checkpoint is left out, not taken for zero.
      control_cpu_stored_s: 1.1,
      first_byte_s: 0.41,
      ddb_calls: 130,
      control_cpu_rsync_s: 0.4,
    });
    expect(observedSummary({})).toEqual({});
  });
});
