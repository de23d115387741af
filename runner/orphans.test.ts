/**
 * A SIGKILLed runner leaves its tools running (each leads its own process group). These tests
 * start real processes through drivers/exec.ts with the registry's hooks, play the crash (a new
 * registry reads the file the dead one wrote) and check what the next start's reconcile does.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExecError, type ProcessGroupHooks, run } from '#drivers/exec.ts';
import { silentLogger } from '#runner/log.ts';
import { sameCommand, stopLeftoverGroups } from '#runner/orphans.ts';
import { processIdentity } from '#runner/proc.ts';
import { PROCESS_GROUPS_FILE, ProcessRegistry } from '#runner/process-registry.ts';
import { reconcileUnfinished } from '#runner/reconcile.ts';
import { backupTask, fakeDrivers, fakeRunner, tempDir, until } from './testing/fakes.ts';

const node = process.execPath;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A runner's registry whose hooks go dead at `crash()`, as a SIGKILLed runner's would. */
function doomedRunner(file: string) {
  const registry = ProcessRegistry.open(file, silentLogger);
  let alive = true;
  const hooks: ProcessGroupHooks = {
    onSpawn: (pgid, command) => alive && registry.hooks.onSpawn(pgid, command),
    onExit: (pgid) => alive && registry.hooks.onExit(pgid),
  };
  /** Starts a tool the way a task does; the promise is what the dead runner would have seen. */
  const start = (file: string, args: string[]) => {
    const abort = new AbortController();
    const pending = run({ file, args }, { processGroups: hooks, signal: abort.signal }).then(
      () => undefined,
      (e: unknown) => e,
    );
    cleanups.push(async () => {
      abort.abort();
      await pending;
    });
    const pgid = registry.running().at(-1)?.pgid ?? 0;
    return { pgid, pending };
  };
  return {
    start,
    crash: () => {
      alive = false;
    },
  };
}

/** Running and not a zombie. */
function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('tools a killed runner left running', () => {
  it('are stopped by the next start before it cleans the crashed task up', async () => {
    const r = await fakeRunner();
    cleanups.push(r.remove);
    const file = join(r.dir, PROCESS_GROUPS_FILE);
    const dead = doomedRunner(file);
    await r.journal.start(backupTask({ taskId: '40/RunOnHost', token: 'tok-40' }));
    const restic = dead.start('sleep', ['300']);
    expect(isRunning(restic.pgid)).toBe(true);
    dead.crash();

    let runningAtDiskReconcile: boolean | undefined;
    const drivers = fakeDrivers({
      reconcile: async () => {
        runningAtDiskReconcile = isRunning(restic.pgid);
        return [];
      },
    });
    await reconcileUnfinished({
      journal: r.journal,
      reporter: r.reporter,
      drivers,
      secrets: async () => ({}),
      stateDir: r.dir,
      log: silentLogger,
      processes: ProcessRegistry.open(file, silentLogger),
      orphanGraceMs: 3000,
    });

    expect(isRunning(restic.pgid)).toBe(false);
    expect(runningAtDiskReconcile).toBe(false);
    const ended = await restic.pending;
    expect(ended).toBeInstanceOf(ExecError);
    expect((ended as ExecError).signal).toBe('SIGTERM');
    expect(JSON.parse(readFileSync(file, 'utf8')).groups).toEqual([]);
    expect(r.journal.get('40/RunOnHost')?.state).toBe('failed');
  });

  it('are killed with their children when they ignore SIGTERM past the grace period', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const file = join(temp.dir, PROCESS_GROUPS_FILE);
    const dead = doomedRunner(file);
    // Like restic with its ssh: a leader that shrugs SIGTERM off, and a child in its group.
    const script = `process.on('SIGTERM', () => {});
      const c = require('node:child_process').spawn('sleep', ['300'], { stdio: 'ignore' });
      require('node:fs').writeFileSync(${JSON.stringify(join(temp.dir, 'child.pid'))}, String(c.pid));
      setInterval(() => {}, 1000);`;
    const tool = dead.start(node, ['-e', script]);
    await until(() => readChildPid(temp.dir) > 0);
    const child = readChildPid(temp.dir);
    dead.crash();

    const reports = await stopLeftoverGroups(ProcessRegistry.open(file, silentLogger), {
      log: silentLogger,
      graceMs: 300,
    });
    expect(reports).toEqual([{ pgid: tool.pgid, command: `${node} -e ${script}`, outcome: 'killed' }]);
    expect(isRunning(tool.pgid)).toBe(false);
    expect(isRunning(child)).toBe(false);
    expect(((await tool.pending) as ExecError).signal).toBe('SIGKILL');
  });

  // How restic runs with RESTIC_NICE (nice execs the tool), and a `restic` on PATH that runs
  // `/usr/bin/restic "$@"` (a packaged wrapper, or the test suite's shim): /proc then shows
  // another command line than the one recorded, without the wrapper, or without even its name.
  it.each([
    ['a wrapper (nice) has since exec’d the tool it wraps', 'sleep', 'sleep'],
    ['the tool is a script that execs its program by a full path', 'script', '/bin/sleep'],
  ])('are stopped when %s', async (_case, tool, shown) => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const file = join(temp.dir, PROCESS_GROUPS_FILE);
    const program = tool === 'script' ? join(temp.dir, 'tool') : tool;
    if (tool === 'script') writeFileSync(program, '#!/bin/sh\nexec /bin/sleep "$@"\n', { mode: 0o755 });
    const dead = doomedRunner(file);
    const wrapped = dead.start('nice', ['-n', '5', program, '300']);
    await until(() => readFileSync(`/proc/${wrapped.pgid}/cmdline`, 'utf8') === `${shown}\u0000300\u0000`);
    dead.crash();
    // The registry usually reads /proc before nice's exec: pin that case (it may be quicker).
    const [recorded] = JSON.parse(readFileSync(file, 'utf8')).groups;
    const before = { ...recorded, cmdline: ['nice', '-n', '5', program, '300'] };
    writeFileSync(file, JSON.stringify({ v: 1, groups: [before] }), { mode: 0o600 });

    const reports = await stopLeftoverGroups(ProcessRegistry.open(file, silentLogger), {
      log: silentLogger,
      graceMs: 3000,
    });
    expect(reports.map((r) => r.outcome)).toEqual(['stopped']);
    expect(isRunning(wrapped.pgid)).toBe(false);
  });

  it('are waited for until reaped when they ended as zombies nobody has reaped yet', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const file = join(temp.dir, PROCESS_GROUPS_FILE);
    // A tool that ended when its runner died, not yet reaped by its new parent (init polls): a
    // zombie, whose pid restic's `unlock` takes for a live process. Here the parent reaps at 1.5 s.
    const script = [
      'import os, sys, time',
      'pid = os.fork()',
      'if pid == 0:',
      '    os.setpgid(0, 0)',
      '    time.sleep(0.3)',
      '    os._exit(0)',
      'print(pid, flush=True)',
      'time.sleep(1.5)',
      'os.waitpid(pid, 0)',
      'time.sleep(5)',
    ].join('\n');
    const parent = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(async () => {
      parent.kill('SIGKILL');
    });
    const pid = Number(
      await new Promise<string>((resolve) => parent.stdout.once('data', (d) => resolve(String(d)))),
    );
    const identity = processIdentity(pid) as NonNullable<ReturnType<typeof processIdentity>>;
    const registry = ProcessRegistry.open(file, silentLogger);
    writeFileSync(
      file,
      JSON.stringify({
        v: 1,
        groups: [
          {
            pgid: pid,
            startTime: identity.startTime,
            cmdline: identity.cmdline,
            bootId: registry.bootId,
            at: new Date().toISOString(),
          },
        ],
      }),
      { mode: 0o600 },
    );
    await until(() => processIdentity(pid)?.state === 'Z');
    const started = Date.now();
    const reports = await stopLeftoverGroups(ProcessRegistry.open(file, silentLogger), {
      log: silentLogger,
      graceMs: 300,
    });
    expect(reports.map((r) => r.outcome)).toEqual(['gone']);
    expect(processIdentity(pid)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('are left alone when their pid now runs another command or started at another time', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const file = join(temp.dir, PROCESS_GROUPS_FILE);
    const dead = doomedRunner(file);
    const other = dead.start('sleep', ['300']);
    dead.crash();
    const [recorded] = JSON.parse(readFileSync(file, 'utf8')).groups;
    // What the file would say had the kernel reused the pid of a dead runner's restic.
    const reused = [
      { ...recorded, cmdline: ['restic', 'backup', '--stdin'] },
      { ...recorded, startTime: String(Number(recorded.startTime) - 100) },
      // The tail rule is about wrappers: a longer line now than recorded is another command.
      { ...recorded, cmdline: ['300'] },
    ];
    writeFileSync(file, JSON.stringify({ v: 1, groups: reused }), { mode: 0o600 });

    const registry = ProcessRegistry.open(file, silentLogger);
    const reports = await stopLeftoverGroups(registry, { log: silentLogger, graceMs: 300 });

    expect(reports.map((r) => r.outcome)).toEqual(['not ours', 'not ours', 'not ours']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(isRunning(other.pgid)).toBe(true);
    expect(registry.leftovers()).toEqual([]);
  });

  it('are forgotten without a signal when they already ended or were recorded before a reboot', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const file = join(temp.dir, PROCESS_GROUPS_FILE);
    const dead = doomedRunner(file);
    const ended = dead.start('sleep', ['0.05']);
    const rebooted = dead.start('sleep', ['300']);
    dead.crash();
    await ended.pending;
    const groups = JSON.parse(readFileSync(file, 'utf8')).groups;
    groups[1].bootId = 'another-boot';
    writeFileSync(file, JSON.stringify({ v: 1, groups }), { mode: 0o600 });

    const reports = await stopLeftoverGroups(ProcessRegistry.open(file, silentLogger), {
      log: silentLogger,
      graceMs: 300,
    });
    expect(reports.map((r) => [r.pgid, r.outcome])).toEqual([
      [ended.pgid, 'gone'],
      [rebooted.pgid, 'gone'],
    ]);
    expect(isRunning(rebooted.pgid)).toBe(true);
    expect(JSON.parse(readFileSync(file, 'utf8')).groups).toEqual([]);
  });
});

function readChildPid(dir: string): number {
  try {
    return Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
  } catch {
    return 0;
  }
}

describe('a recorded command line and the one /proc shows now', () => {
  const recorded = [
    'nice',
    '-n',
    '10',
    'ionice',
    '-c2',
    '-n',
    '7',
    'restic',
    '-r',
    '/srv/7',
    'backup',
    '--stdin',
  ];
  it.each([
    ['the same line', recorded, true],
    ['after the wrappers exec', ['restic', '-r', '/srv/7', 'backup', '--stdin'], true],
    ['the program by its full path', ['/usr/bin/restic', '-r', '/srv/7', 'backup', '--stdin'], true],
    [
      'a script under its interpreter',
      ['/bin/sh', '/usr/local/bin/restic', '-r', '/srv/7', 'backup', '--stdin'],
      true,
    ],
    ['other arguments', ['/usr/bin/restic', '-r', '/srv/8', 'backup', '--stdin'], false],
    ['another command', ['sleep', '300'], false],
    ['a program alone', ['/usr/bin/restic'], false],
    ['a longer line', ['sudo', '-u', 'backup', ...recorded], false],
    ['nothing', [], false],
  ])('%s: %s', (_name, now, ours) => {
    expect(sameCommand(recorded, now)).toBe(ours);
  });
});
