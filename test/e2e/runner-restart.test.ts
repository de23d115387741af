/**
 * A runner SIGKILLed in the middle of an upload, in local mode: the supervisor starts it again
 * within seconds (as systemd's `Restart=` does on a host), the new runner reconciles what the
 * dead one left (its tools stopped, the VM back on its own disk, the restic lock removed) and
 * answers the task's execution with RunnerRestarted, so the backup ends within minutes through
 * its Cleanup, not after the heartbeat (120 s here, as deployed) and the Cleanup timeout
 * (600 s). Then the VM is unlocked, the repository holds no lock and no snapshot of the failed
 * backup, the restic password file the dead runner left is gone, and the VM's next backup
 * restores byte-identical. (failures.test.ts kept a FULL-only copy of this scenario; its checks
 * are here.) A runner stopped (SIGSTOP) for longer than hostOfflineSeconds makes its host
 * OFFLINE; once it runs again, its report makes it MONITORED.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { blockList, createTestVm, type TestVm, virsh } from '../helpers/libvirt.ts';
import { guestSha256, leftoverOverlays, removeHome, type Stack, startStack, until } from './harness.ts';

const MiB = 1024 * 1024;
const DOMAIN = 'lb-h11f-restart';
const PASSWORD = 'restart-password-1';

let stack: Stack;
let scratch: string;
const tests: TestVm[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-restart-'));
  // The deployed heartbeat (the harness' default is 20 s): only the restart can end it quickly.
  // A host silent for 10 s is OFFLINE (judged at the dispatcher's periodic run, every 2 s here).
  stack = await startStack({
    config: { heartbeatSeconds: 120, hostOfflineSeconds: 10, schedulerIntervalSeconds: 2 },
  });
  await stack.host();
}, 180_000);

afterAll(async () => {
  for (const test of tests) await test.destroy().catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

/** The runner's pid as pids.json names it (the supervisor rewrites it at each start). */
async function runnerPid(): Promise<number | undefined> {
  const pids = JSON.parse(await readFile(join(stack.home, 'pids.json'), 'utf8')) as {
    children: Record<string, number>;
  };
  return pids.children.runner;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A backup of each kind: the snapshot overlay (MODE=FULL) and the CBT pull job (MODE=INCREMENT). */
const MODES = [
  { mode: 'FULL', what: 'on a snapshot overlay', domain: `${DOMAIN}-full` },
  { mode: 'INCREMENT', what: 'from a libvirt pull backup job (CBT)', domain: `${DOMAIN}-cbt` },
] as const;

describe('a runner killed mid-upload', () => {
  it.each(MODES)(
    'backing up $what: started again by the supervisor; the backup ends promptly as RunnerRestarted; the VM is intact and its next backup exact',
    async ({ mode, domain }) => {
      const test = await createTestVm({
        name: domain,
        disks: [{ sizeMiB: 64, format: 'qcow2' }],
        running: false,
        backupConfig: { MODE: mode },
      });
      tests.push(test);
      const disk = test.disks[0]?.path as string;
      // Incompressible data, uploaded at 2 MiB/s: the upload lasts several seconds.
      const file = join(scratch, 'random');
      await writeFile(file, randomBytes(24 * MiB));
      await run({ file: 'qemu-img', args: ['convert', '-n', '-f', 'raw', '-O', 'qcow2', file, disk] });
      await rm(file);
      // What the guest sees (the firmware writes nothing to the disk).
      const sha = await guestSha256(disk, 'qcow2');
      await virsh('start', domain);
      const vm = await stack.vm(domain, 'RUNNING');
      const original = await blockList(domain);
      const datastore = await stack.json<Datastore>([
        'datastore',
        'create',
        '--name',
        `slow-${mode}`,
        '--driver',
        'restic',
        '--attr',
        `BASE_PATH=${join(scratch, `repo-${mode}`)}`,
        '--attr',
        `RESTIC_PASSWORD=${PASSWORD}`,
        '--attr',
        'RESTIC_BWLIMIT=2048',
        '--attr',
        'RESTIC_COMPRESSION=off',
      ]);

      const queued = await stack.json<Execution>(['vm', 'backup', String(vm.id), '-d', String(datastore.id)]);
      await until(
        `execution ${queued.id} uploading`,
        async () => {
          const e = await stack.api<Execution>('GET', `/executions/${queued.id}`);
          if (!['QUEUED', 'RUNNING'].includes(e.state)) throw new Error(`ended early: ${JSON.stringify(e)}`);
          return e.phase === 'uploading' && e.bytesDone > 0 ? e : undefined;
        },
        60_000,
        200,
      );
      // The VM writes into an overlay while the snapshot's file is read; CBT reads a pull export.
      if (mode === 'FULL') expect(await leftoverOverlays(stack)).not.toEqual([]);
      // restic's password file lies in the runner's own scratch folder, not in the host's /tmp.
      const scratchOf = () => readdir(join(stack.runnerDir, 'tmp'));
      expect((await scratchOf()).filter((name) => name.startsWith('lifeboat-restic-'))).toHaveLength(1);
      const killed = (await runnerPid()) as number;
      process.kill(killed, 'SIGKILL');
      const killedAt = Date.now();

      // Back within seconds: a new pid, alive, in pids.json.
      const restarted = await until(
        'the supervisor to start the runner again',
        async () => {
          const pid = await runnerPid();
          return pid !== undefined && pid !== killed && alive(pid) ? pid : undefined;
        },
        15_000,
        100,
      );
      const backAfterMs = Date.now() - killedAt;
      expect(alive(killed)).toBe(false);
      expect(await stack.logs()).toContain('runner ended: starting it again');
      // The killed runner never removed it; the new one empties the folder as it starts.
      await until('the scratch folder emptied', async () =>
        (await scratchOf()).length === 0 ? true : undefined,
      );

      const failed = await until(
        `execution ${queued.id} to end`,
        async () => {
          const e = await stack.api<Execution>('GET', `/executions/${queued.id}`);
          return ['QUEUED', 'RUNNING'].includes(e.state) ? undefined : e;
        },
        5 * 60_000,
        500,
      );
      const endedAfterMs = Date.now() - killedAt;
      console.log('runner back after', backAfterMs, 'ms; backup ended after', endedAfterMs, 'ms');
      expect(failed.state).toBe('FAILED');
      expect(failed.error?.name).toBe('RunnerRestarted');
      expect(failed.error?.message).toMatch(/restarted/);
      // Well before the heartbeat (120 s) could have ended it.
      expect(endedAfterMs).toBeLessThan(120_000);

      // The VM on its own disk: no overlay in its chain, no job on it, nothing in the work folders.
      expect(await blockList(domain)).toEqual(original);
      const info = JSON.parse(
        (await run({ file: 'qemu-img', args: ['info', '-U', '--output=json', disk] })).stdout,
      );
      expect(info['backing-filename']).toBeUndefined();
      expect(await virsh('domjobinfo', domain)).toMatch(/Job type:\s+None/);
      expect(await leftoverOverlays(stack)).toEqual([]);
      // No checkpoint of the backup that never completed: no chain may follow it.
      if (mode === 'INCREMENT') expect((await virsh('checkpoint-list', domain, '--name')).trim()).toBe('');
      // Unlocked, and the image of the failed backup is not among its backups.
      const after = await stack.json<Vm>(['vm', 'show', String(vm.id)]);
      expect(after.lock).toBeUndefined();
      expect(after.state).toBe('RUNNING');
      expect(after.backups.BACKUP_IDS ?? []).not.toContain(failed.imageId);
      if (failed.imageId !== undefined) {
        const shown = await stack.cli(['image', 'show', String(failed.imageId), '--json']);
        if (shown.code === 0) expect((JSON.parse(shown.stdout) as Image).state).toBe('ERROR');
      }
      // The killed runner's restic (orphaned by the SIGKILL) stops writing to the repository, and
      // leaves no lock and no snapshot of the failed backup there.
      const repo = join(scratch, `repo-${mode}`, String(vm.id));
      const restic = async (args: string[]) =>
        (
          await run({
            file: 'restic',
            args: ['-r', repo, '--no-lock', ...args],
            env: { RESTIC_PASSWORD: PASSWORD },
          })
        ).stdout;
      await until('no process working on the repository', async () => {
        const ps = (await run({ file: 'ps', args: ['-eo', 'args'] })).stdout;
        return ps.includes(repo) ? undefined : true;
      });
      await until('no restic lock', async () =>
        (await restic(['list', 'locks'])).trim() === '' ? true : undefined,
      );
      expect(JSON.parse(await restic(['snapshots', '--json']))).toEqual([]);
      // Still the same runner: it did not die again meanwhile.
      expect(await runnerPid()).toBe(restarted);

      // The next backup, to the same repository at full speed, restores byte-identical.
      await stack.json<Datastore>(['datastore', 'update', String(datastore.id), '--attr', 'RESTIC_BWLIMIT=']);
      const next = await stack.json<Execution>([
        'vm',
        'backup',
        String(vm.id),
        '-d',
        String(datastore.id),
        '--wait',
      ]);
      expect(next.state).toBe('SUCCEEDED');
      if (mode === 'INCREMENT')
        expect((await virsh('checkpoint-list', domain, '--name')).trim()).not.toBe('');
      const image = await stack.json<Image>(['image', 'show', String(next.imageId)]);
      expect(image.state).toBe('READY');
      const dir = join(scratch, `restored-${mode}`);
      const restored = await stack.json<Execution>([
        'image',
        'restore',
        String(image.id),
        '--to',
        dir,
        '--name',
        'r',
        '--wait',
      ]);
      expect(restored.state).toBe('SUCCEEDED');
      expect(await guestSha256(join(dir, 'r-disk-0.qcow2'), 'qcow2')).toBe(sha);
    },
    10 * 60_000,
  );

  it('a runner that stops reporting makes its host OFFLINE; reporting again makes it MONITORED', async () => {
    const host = await stack.host();
    const read = () => stack.api<{ state: string; lastHeartbeat?: string }>('GET', `/hosts/${host.id}`);
    const stateOf = async () => (await read()).state;
    expect(await stateOf()).toBe('MONITORED');
    const pid = (await runnerPid()) as number;
    // Stopped, not dead: the supervisor has nothing to restart, and the runner reports nothing.
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      const offline = await until(
        'host OFFLINE',
        async () => {
          const now = await read();
          return now.state === 'OFFLINE' ? now : undefined;
        },
        60_000,
        500,
      );
      // Silence counts from the runner's last report (taken before it stopped), not from the stop.
      const lastReport = Date.parse(offline.lastHeartbeat ?? '');
      expect(lastReport).toBeLessThanOrEqual(stoppedAt);
      expect(Date.now() - lastReport).toBeGreaterThanOrEqual(10_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await until(
      'host MONITORED again',
      async () => ((await stateOf()) === 'MONITORED' ? true : undefined),
      60_000,
      500,
    );
    expect(await runnerPid()).toBe(pid);
  }, 180_000);

  it('an orderly local down stops the runner for good: it is not started again', async () => {
    const last = (await runnerPid()) as number;
    expect(alive(last)).toBe(true);
    await stack.stop();
    expect(alive(last)).toBe(false);
    // Give a restart, were one to come, its 1 s and a start.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await runnersOf(stack.home)).toEqual([]);
  }, 120_000);
});

/** Pids of runners started for `home` (`runner/main.ts ... --home HOME`), from /proc. */
async function runnersOf(home: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const args = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (args.some((a) => a.endsWith('runner/main.ts')) && args.includes(home)) found.push(Number(name));
  }
  return found;
}
