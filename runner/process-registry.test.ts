import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '#drivers/exec.ts';
import { type Logger, silentLogger } from '#runner/log.ts';
import { PROCESS_GROUPS_FILE, ProcessRegistry } from '#runner/process-registry.ts';
import { tempDir } from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function stateDir(): Promise<string> {
  const temp = await tempDir();
  cleanups.push(temp.remove);
  return temp.dir;
}

/** The groups the file lists, as a successor would read them. */
function fileGroups(file: string): { pgid: number; cmdline: string[] }[] {
  return JSON.parse(readFileSync(file, 'utf8')).groups;
}

describe('process registry file', () => {
  it('holds each running tool with its identity (0600, written whole) and drops it when it ends', async () => {
    const dir = await stateDir();
    const file = join(dir, PROCESS_GROUPS_FILE);
    const registry = ProcessRegistry.open(file, silentLogger);
    const abort = new AbortController();
    const pending = run(
      { file: 'sleep', args: ['30'] },
      { signal: abort.signal, processGroups: registry.hooks },
    );
    cleanups.push(async () => {
      abort.abort();
      await pending.catch(() => {});
    });

    const [group] = fileGroups(file);
    expect(group?.cmdline).toEqual(['sleep', '30']);
    expect(group).toMatchObject({ startTime: expect.stringMatching(/^\d+$/), bootId: registry.bootId });
    expect(readFileSync(`/proc/${group?.pgid}/cmdline`, 'utf8')).toBe('sleep\u000030\u0000');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual([PROCESS_GROUPS_FILE]);

    abort.abort();
    await pending.catch(() => {});
    expect(fileGroups(file)).toEqual([]);
    expect(registry.running()).toEqual([]);
  });

  it('hands the previous run its leftovers and keeps them in the file until settled', async () => {
    const dir = await stateDir();
    const file = join(dir, PROCESS_GROUPS_FILE);
    const first = ProcessRegistry.open(file, silentLogger);
    const abort = new AbortController();
    const pending = run(
      { file: 'sleep', args: ['30'] },
      { signal: abort.signal, processGroups: first.hooks },
    );
    cleanups.push(async () => {
      abort.abort();
      await pending.catch(() => {});
    });
    const recorded = fileGroups(file);
    expect(recorded).toHaveLength(1);

    // The "crash": a new registry reads the file while the tool still runs.
    const second = ProcessRegistry.open(file, silentLogger);
    expect(second.leftovers()).toEqual(recorded);
    // Its own tools are added beside the leftovers, not over them (this one's end is not told,
    // so it stays listed as if still running).
    await run({ file: 'sleep', args: ['0.2'] }, { processGroups: { ...second.hooks, onExit: () => {} } });
    expect(fileGroups(file).map((g) => g.cmdline)).toEqual([
      ['sleep', '30'],
      ['sleep', '0.2'],
    ]);
    second.settle(second.leftovers());
    expect(second.leftovers()).toEqual([]);
    expect(fileGroups(file).map((g) => g.cmdline)).toEqual([['sleep', '0.2']]);
  });

  it('starts empty on a missing file, and on a damaged one with a warning instead of failing', async () => {
    const dir = await stateDir();
    const file = join(dir, PROCESS_GROUPS_FILE);
    expect(ProcessRegistry.open(file, silentLogger).leftovers()).toEqual([]);

    const warnings: string[] = [];
    const log = Object.assign((level: string, message: string) => warnings.push(`${level} ${message}`), {
      child: () => log,
    }) as Logger;
    writeFileSync(file, '{"v":1,"groups":[{"pgid":12', { mode: 0o600 });
    expect(ProcessRegistry.open(file, log).leftovers()).toEqual([]);
    writeFileSync(file, '{"v":1,"groups":[{"pgid":"12"}]}', { mode: 0o600 });
    expect(ProcessRegistry.open(file, log).leftovers()).toEqual([]);
    expect(warnings).toEqual([
      'warn process group registry unreadable, ignored',
      'warn process group registry unreadable, ignored',
    ]);
  });
});
