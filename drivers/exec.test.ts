import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Cancelled,
  type Command,
  ExecError,
  type ProcessGroupHooks,
  run,
  runPipeline,
  watchProcessGroups,
} from './exec.ts';

const node = process.execPath;

describe('run', () => {
  it('returns stdout and passes env without argv', async () => {
    const result = await run({
      file: node,
      args: ['-e', 'process.stdout.write(process.env.SECRET_X)'],
      env: { SECRET_X: 's3' },
    });
    expect(result.stdout).toBe('s3');
  });

  it('fails with ExecError carrying exit code and stderr tail', async () => {
    const error = await run({ file: node, args: ['-e', 'console.error("boom"); process.exit(3)'] }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(ExecError);
    expect(error.exitCode).toBe(3);
    expect(error.message).toContain('boom');
    expect(error.name).toBe('ExecError');
  });

  it('masks secrets a tool echoes, and URL passwords, in the message, the stderr tail and the cause', async () => {
    const error = await run({
      file: node,
      args: [
        '-e',
        'console.error("auth failed for", process.env.RESTIC_PASSWORD, "/", process.argv[1], "/ pw-from-file"); process.exit(3)',
        'sftp://backup:hunter2-url@host/repo',
      ],
      env: {
        RESTIC_PASSWORD: 'correct horse battery',
        AWS_SECRET_ACCESS_KEY: 'AKIA-not-shown',
        RESTIC_REPOSITORY: '/srv/r',
      },
      secrets: ['pw-from-file'],
    }).catch((e) => e);
    expect(error).toBeInstanceOf(ExecError);
    const everything = `${error.message} ${error.stderrTail} ${error.cmd} ${String(error.cause ?? '')}`;
    for (const secret of ['correct horse battery', 'hunter2-url', 'pw-from-file']) {
      expect(everything).not.toContain(secret);
    }
    expect(error.stderrTail).toBe('auth failed for *** / sftp://backup:***@host/repo / ***');
    expect(error.cmd).toContain('sftp://backup:***@host/repo');
  });

  it('reports a missing program as could not start', async () => {
    const error = await run({ file: '/nonexistent/tool', args: [] }).catch((e) => e);
    expect(error).toBeInstanceOf(ExecError);
    expect(error.message).toContain('could not start');
  });

  it('cancelling kills the whole process group, grandchildren included', async () => {
    const controller = new AbortController();
    const script = `const c = require('node:child_process').spawn('sleep', ['300'], { stdio: 'ignore' });
      console.log(c.pid); setInterval(() => {}, 1000);`;
    let grandchild = 0;
    const pending = run(
      { file: node, args: ['-e', script] },
      {
        signal: controller.signal,
        onStdoutLine: (line) => {
          grandchild = Number(line);
          controller.abort();
        },
      },
    );
    await expect(pending).rejects.toBeInstanceOf(Cancelled);
    await new Promise((r) => setTimeout(r, 200));
    expect(grandchild).toBeGreaterThan(0);
    expect(isAlive(grandchild)).toBe(false);
  });

  it('times out', async () => {
    const error = await run({ file: 'sleep', args: ['30'] }, { timeoutMs: 200 }).catch((e) => e);
    expect(error).toBeInstanceOf(ExecError);
    expect(error.signal).toBe('SIGKILL');
  });
});

describe('runPipeline', () => {
  it('streams one command into the next', async () => {
    const result = await runPipeline([
      { file: 'head', args: ['-c', '1048576', '/dev/zero'] },
      { file: 'wc', args: ['-c'] },
    ]);
    expect(result.stdout.trim()).toBe('1048576');
  });

  it('reports the upstream failure, not the downstream success', async () => {
    const error = await runPipeline([
      { file: node, args: ['-e', 'console.error("disk gone"); process.exit(7)'] },
      { file: 'cat', args: [] },
    ]).catch((e) => e);
    expect(error).toBeInstanceOf(ExecError);
    expect(error.exitCode).toBe(7);
    expect(error.message).toContain('disk gone');
  });

  it('reports a producer that fails on its own after its consumer ended well: a cut stream is no success', async () => {
    // The consumer takes no input and exits 0 at once; the producer, still running, then fails
    // without ever writing (no broken pipe): its failure is the pipeline's.
    const error = await runPipeline([
      { file: node, args: ['-e', 'setTimeout(() => { console.error("disk gone"); process.exit(7); }, 300)'] },
      { file: 'true', args: [] },
    ]).catch((e) => e);
    expect(error).toBeInstanceOf(ExecError);
    expect(error.exitCode).toBe(7);
    expect(error.message).toContain('disk gone');
  });

  it('hands each command its producer’s pipe: the bytes never pass through this process', async () => {
    const before = process.cpuUsage();
    const result = await runPipeline([
      { file: 'head', args: ['-c', String(256 * 2 ** 20), '/dev/zero'] },
      { file: 'wc', args: ['-c'] },
    ]);
    const used = process.cpuUsage(before);
    expect(result.stdout.trim()).toBe(String(256 * 2 ** 20));
    // Copied through Node's streams, 256 MiB cost about 0.5 s of this process's CPU here.
    expect((used.user + used.system) / 1e6).toBeLessThan(0.2);
  });

  it('ends a producer whose consumer exits early instead of hanging', async () => {
    const result = await runPipeline(
      [
        { file: 'yes', args: [] },
        { file: 'head', args: ['-c', '4'] },
      ],
      { timeoutMs: 10_000 },
    );
    expect(result.stdout).toBe('y\ny\n');
  });

  it('reports a consumer that fails early while the producer still writes', async () => {
    const error = await runPipeline(
      [
        { file: 'yes', args: [] },
        { file: node, args: ['-e', 'console.error("wrong password"); process.exit(3)'] },
      ],
      { timeoutMs: 10_000 },
    ).catch((e) => e);
    expect(error).toBeInstanceOf(ExecError);
    expect(error.exitCode).toBe(3);
    expect(error.message).toContain('wrong password');
  });

  it('hands a file to the first command as its stdin descriptor', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'exec-input-'));
    const file = join(dir, 'data');
    await writeFile(file, Buffer.alloc(3 * 1024 * 1024, 0x61));
    // /proc/self/fd/0 of the child is the file itself, not a pipe from this process.
    const link = await run({ file: 'readlink', args: ['/proc/self/fd/0'] }, { inputFile: file });
    expect(link.stdout.trim()).toBe(file);
    const counted = await runPipeline(
      [
        { file: 'cat', args: [] },
        { file: 'wc', args: ['-c'] },
      ],
      { inputFile: file },
    );
    expect(counted.stdout.trim()).toBe(String(3 * 1024 * 1024));
    await rm(dir, { recursive: true, force: true });
  });

  it('inputAfter: the command starts at once and reads the file only once it is ready', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const file = join(dir, 'data');
    await writeFile(file, 'old');
    let open!: () => void;
    const ready = new Promise<void>((resolve) => {
      open = resolve;
    });
    const started = join(dir, 'started');
    // touch first (the command runs before the gate), then count what stdin brings.
    const counting = runPipeline(
      [
        { file: 'sh', args: ['-c', `touch '${started}'; cat`] },
        { file: 'wc', args: ['-c'] },
      ],
      { inputFile: file, inputAfter: ready },
    );
    for (let i = 0; i < 100 && !(await exists(started)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await exists(started)).toBe(true);
    // The file changes between the start and the gate: the new bytes are what is read.
    await writeFile(file, Buffer.alloc(3 * 1024 * 1024 + 5, 0x61));
    open();
    expect((await counting).stdout.trim()).toBe(String(3 * 1024 * 1024 + 5));
    await rm(dir, { recursive: true, force: true });
  });

  it('inputAfter rejected: the command is killed before its input ends, and the call fails with the reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const file = join(dir, 'data');
    await writeFile(file, 'abc');
    const out = join(dir, 'out');
    // Writes only after EOF: a killed consumer never writes `out`.
    const failing = runPipeline([{ file: 'sh', args: ['-c', `cat >/dev/null; echo eof > '${out}'`] }], {
      inputFile: file,
      inputAfter: Promise.reject(new Error('snapshot failed')),
    });
    await expect(failing).rejects.toThrow('snapshot failed');
    expect(await exists(out)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  it('inputAfter: the file streams through a cat of its own, announced like every other group', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const file = join(dir, 'data');
    await writeFile(file, Buffer.alloc(5 * 1024 * 1024 + 3, 0x62));
    const spawned: string[] = [];
    const ended: number[] = [];
    const hooks: ProcessGroupHooks = {
      onSpawn: (pgid, command) => spawned.push(`${pgid} ${[command.file, ...command.args].join(' ')}`),
      onExit: (pgid) => ended.push(pgid),
    };
    const counted = await runPipeline([{ file: 'wc', args: ['-c'] }], {
      inputFile: file,
      inputAfter: Promise.resolve(),
      processGroups: hooks,
    });
    expect(counted.stdout.trim()).toBe(String(5 * 1024 * 1024 + 3));
    expect(spawned.map((line) => line.replace(/^\d+ /, ''))).toEqual(['wc -c', 'cat']);
    await new Promise((r) => setTimeout(r, 50));
    expect(ended.sort()).toEqual(spawned.map((line) => Number(line.split(' ')[0])).sort());
    await rm(dir, { recursive: true, force: true });
  });

  it('inputAfter: a file that cannot be read once ready fails the call, its consumer killed before its input ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const out = join(dir, 'out');
    const failing = runPipeline([{ file: 'sh', args: ['-c', `cat >/dev/null; echo eof > '${out}'`] }], {
      inputFile: join(dir, 'gone'),
      inputAfter: Promise.resolve(),
    });
    await expect(failing).rejects.toThrow(/no such file or directory, open '.*gone'/);
    expect(await exists(out)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  it('inputThrough: the file reaches the pipe through the command given, here a tee to a second reader', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const file = join(dir, 'data');
    const copy = join(dir, 'copy');
    await writeFile(file, Buffer.alloc(2 * 1024 * 1024 + 7, 0x63));
    const counted = await runPipeline([{ file: 'wc', args: ['-c'] }], {
      inputFile: file,
      inputAfter: Promise.resolve(),
      inputThrough: { file: 'tee', args: ['--', copy] },
    });
    expect(counted.stdout.trim()).toBe(String(2 * 1024 * 1024 + 7));
    expect((await readFile(copy)).equals(await readFile(file))).toBe(true);
    await rm(dir, { recursive: true, force: true });
  });

  it('inputThrough failing halfway fails the call, and its consumer never sees the end of its input', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const file = join(dir, 'data');
    await writeFile(file, Buffer.alloc(1024 * 1024, 0x64));
    const out = join(dir, 'out');
    // Passes on the first 4 KiB, then fails like a read error would.
    const failing = runPipeline([{ file: 'sh', args: ['-c', `cat >/dev/null; echo eof > '${out}'`] }], {
      inputFile: file,
      inputAfter: Promise.resolve(),
      inputThrough: { file: 'sh', args: ['-c', 'head -c 4096; echo "read error" >&2; exit 1'] },
    });
    await expect(failing).rejects.toThrow(/sh -c .* < .*data failed \(exit 1\): read error/);
    expect(await exists(out)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  it('inputAfter: a consumer that ends early is reported, not the feeder it cut off', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const file = join(dir, 'data');
    await writeFile(file, Buffer.alloc(8 * 1024 * 1024, 0x65));
    const failing = runPipeline(
      [{ file: 'sh', args: ['-c', 'head -c 10 >/dev/null; echo "repository is locked" >&2; exit 3'] }],
      { inputFile: file, inputAfter: Promise.resolve() },
    );
    await expect(failing).rejects.toThrow(/sh -c .* failed \(exit 3\): repository is locked/);
    await rm(dir, { recursive: true, force: true });
  });

  it("inputThrough cut off by its second reader's end while the consumer still reads: the call fails, the consumer never sees the end of its input", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const file = join(dir, 'data');
    await writeFile(file, Buffer.alloc(8 * 1024 * 1024, 0x66));
    const fifo = join(dir, 'fifo');
    await runPipeline([{ file: 'mkfifo', args: [fifo] }]);
    // The second reader takes a little and goes: tee dies of SIGPIPE on its next write there.
    const second = runPipeline([{ file: 'head', args: ['-c', '10', fifo] }]);
    const out = join(dir, 'out');
    const failing = runPipeline([{ file: 'sh', args: ['-c', `cat >/dev/null; echo eof > '${out}'`] }], {
      inputFile: file,
      inputAfter: Promise.resolve(),
      inputThrough: { file: 'tee', args: ['--', fifo] },
    });
    await expect(failing).rejects.toThrow(/tee -- .*fifo < .*data failed \(killed by SIGPIPE\)/);
    await second;
    expect(await exists(out)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  it('inputAfter: cancelled while the file streams, the feeder dies with the command', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const file = join(dir, 'data');
    await writeFile(file, 'abc');
    const pids: number[] = [];
    const stop = new AbortController();
    const running = runPipeline([{ file: 'cat', args: [] }], {
      inputFile: file,
      inputAfter: Promise.resolve(),
      // A feeder that is slow to pass its input on.
      inputThrough: { file: 'sleep', args: ['30'] },
      signal: stop.signal,
      processGroups: { onSpawn: (pgid) => pids.push(pgid), onExit: () => {} },
    });
    for (let i = 0; i < 100 && pids.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(pids).toHaveLength(2);
    stop.abort();
    await expect(running).rejects.toThrow('was cancelled');
    await new Promise((r) => setTimeout(r, 50));
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    await rm(dir, { recursive: true, force: true });
  });

  it('inputAfter with input: the command starts at once and its input is written once ready', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const started = join(dir, 'started');
    let open!: () => void;
    const ready = new Promise<void>((resolve) => {
      open = resolve;
    });
    const got = join(dir, 'got');
    const echoing = runPipeline(
      [{ file: 'sh', args: ['-c', `touch '${started}'; read -r line; touch '${got}'; printf %s "$line"`] }],
      { input: 'the template', inputAfter: ready },
    );
    for (let i = 0; i < 100 && !(await exists(started)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await exists(started)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(await exists(got)).toBe(false);
    open();
    expect((await echoing).stdout).toBe('the template');
    await rm(dir, { recursive: true, force: true });
  });

  it('inputAfter with input rejected: the command is killed before its input ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-exec-'));
    const out = join(dir, 'out');
    const failing = runPipeline([{ file: 'sh', args: ['-c', `cat >/dev/null; echo eof > '${out}'`] }], {
      input: 'the template',
      inputAfter: new Promise((_, reject) => setTimeout(() => reject(new Error('verify failed')), 100)),
    });
    await expect(failing).rejects.toThrow('verify failed');
    expect(await exists(out)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  it('feeds input to the first command', async () => {
    const result = await runPipeline(
      [
        { file: 'cat', args: [] },
        { file: 'tr', args: ['a-z', 'A-Z'] },
      ],
      { input: 'abc' },
    );
    expect(result.stdout).toBe('ABC');
  });
});

describe('process group hooks', () => {
  /** Records the calls, and what /proc said about each group when it was announced. */
  function recorder() {
    const events: string[] = [];
    const groups: { pgid: number; pgrp: number; file: string }[] = [];
    const hooks: ProcessGroupHooks = {
      onSpawn: (pgid: number, command: Command) => {
        events.push(`spawn ${command.file}`);
        groups.push({ pgid, pgrp: groupOf(pgid), file: command.file });
      },
      onExit: (pgid: number) => events.push(`exit ${groups.find((g) => g.pgid === pgid)?.file}`),
    };
    return { events, groups, hooks };
  }

  it('announces each command of a pipeline as its own group, and its end', async () => {
    const r = recorder();
    await runPipeline(
      [
        { file: 'echo', args: ['hi'] },
        { file: 'cat', args: [] },
      ],
      { processGroups: r.hooks },
    );
    // At announcement the leader already runs in a group of its own: the pgid is its pid.
    expect(r.groups.map((g) => [g.file, g.pgrp === g.pgid])).toEqual([
      ['echo', true],
      ['cat', true],
    ]);
    expect(r.events.slice(0, 2)).toEqual(['spawn echo', 'spawn cat']);
    expect(r.events.slice(2).sort()).toEqual(['exit cat', 'exit echo']);
  });

  it('tells process-wide watchers until they stop watching', async () => {
    const r = recorder();
    const unwatch = watchProcessGroups(r.hooks);
    await run({ file: 'true', args: [] });
    unwatch();
    await run({ file: 'false', args: [] }).catch(() => {});
    expect(r.events).toEqual(['spawn true', 'exit true']);
  });

  it('announces nothing for a tool that cannot start, and a throwing hook fails no command', async () => {
    const r = recorder();
    await expect(run({ file: '/nonexistent/tool', args: [] }, { processGroups: r.hooks })).rejects.toThrow(
      'could not start',
    );
    expect(r.events).toEqual([]);
    const broken: ProcessGroupHooks = {
      onSpawn: () => {
        throw new Error('disk full');
      },
      onExit: () => {
        throw new Error('disk full');
      },
    };
    expect((await run({ file: 'echo', args: ['ok'] }, { processGroups: broken })).stdout).toBe('ok\n');
  });
});

/** The process group of `pid` (field 5 of /proc/<pid>/stat), or -1 when it is gone. */
function groupOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return -1;
  }
}

/** Alive and not a zombie (PID 1 here is not an init that reaps orphans). */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
