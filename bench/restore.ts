/**
 * `npm run bench -- restore`: the full benchmark's disk (a running VM's raw disk of
 * incompressible data, 4 GiB by default) backed up once through Lifeboat to a restic datastore
 * over SFTP on a loopback sshd, then restored to a folder, `repeat` times, interleaved with the
 * same restore done by hand from the same snapshot in the same run:
 *
 * - Lifeboat: `POST /images/{id}/restore` with a `targetDir`, timed from the bench's clock just
 *   before the call to the `endedAt` the execution records at SUCCEEDED (the runner's `restic
 *   dump` into its work folder, `qemu-img convert` to qcow2 with its check, the template written
 *   beside it). It is followed as `lifeboat ... --wait` follows it (bench/lifeboat.ts
 *   `followToEnd`); the polls only tell when it ended, not the time. The backup restored is
 *   timed as bench/lifeboat.ts times one.
 * - Raw: `restic dump <snapshot> /disk.0.raw` into a file (restic's stdout is the file itself),
 *   then the conversion Lifeboat does, `qemu-img convert -f raw -O qcow2`, and the dump removed.
 *
 * Both write to the same filesystem (the temp dir, where the runner's work folder is too), and
 * the first round checks both restored disks against the VM's disk with `qemu-img compare`.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { run } from '#drivers/exec.ts';
import { startSshd } from '../test/helpers/sshd.ts';
import { targetRoot } from './full.ts';
import { followToEnd, recordedSeconds, timeLifeboatBackup } from './lifeboat.ts';
import { loadText, round, secondsSince, timed } from './measure.ts';
import {
  finished,
  type RawTarget,
  removeResticCache,
  resticArgs,
  resticRepoId,
  withPassword,
} from './raw.ts';
import { type Api, startFilledVm, startStack, waitForVm } from './stack.ts';
import { interleave, ratio, Samples } from './stats.ts';

/** The last stdout line of `bench restore`; seconds are medians of the interleaved runs. */
export interface RestoreSummary {
  disk_gib: number;
  /** The one Lifeboat backup restored (API call to image READY). */
  backup_s: number;
  lifeboat_restore_s: number;
  raw_restore_s: number;
  /** lifeboat_restore_s / raw_restore_s (target <= 1.10). */
  ratio_restore: number;
  repeat: number;
  spread_s: Record<string, { min: number; max: number }>;
}

export const RESTORE_CONTENDERS = ['lifeboat_restore', 'raw_restore'] as const;
export type RestoreContender = (typeof RESTORE_CONTENDERS)[number];

// Unique per run (see full.ts).
const DOMAIN = `lifeboat-bench-restore-${process.pid}`;
const PASSWORD = 'bench-only password';

/** Builds the summary from the backup's seconds and the restores' runs. */
export function summarizeRestore(m: {
  sizeMiB: number;
  backupS: number;
  samples: Samples<RestoreContender>;
}): RestoreSummary {
  const lb = m.samples.of('lifeboat_restore');
  const raw = m.samples.of('raw_restore');
  return {
    disk_gib: round(m.sizeMiB / 1024, 3),
    backup_s: round(m.backupS, 2),
    lifeboat_restore_s: lb.median,
    raw_restore_s: raw.median,
    ratio_restore: ratio(lb.median, raw.median),
    repeat: Math.min(lb.runs.length, raw.runs.length),
    spread_s: m.samples.ranges(),
  };
}

/** The restore request of run `round`: the disk and template into `targetDir`, no VM defined. */
export function restoreRequest(round: number, targetDir: string): Record<string, unknown> {
  return { name: `bench-restore-${round}`, targetDir, define: false };
}

/** The commands of the raw restore, as argument arrays (no shell). */
export function rawRestoreCommands(
  repoArgs: readonly string[],
  snapshotId: string,
  name: string,
  dumped: string,
  out: string,
): { dump: string[]; convert: string[] } {
  return {
    dump: [...repoArgs, 'dump', snapshotId, `/${name}`],
    convert: ['convert', '-f', 'raw', '-O', 'qcow2', dumped, out],
  };
}

const SnapshotList = z.array(
  z.object({ id: z.string(), paths: z.array(z.string()), tags: z.array(z.string()).optional() }),
);

/** The id of the snapshot holding `/<name>` among those tagged `image:<imageId>`. */
async function snapshotOf(target: RawTarget, imageId: number, name: string): Promise<string> {
  return withPassword(PASSWORD, async (env) => {
    const child = spawn(
      'restic',
      [...resticArgs(target), 'snapshots', '--json', '--tag', `image:${imageId}`],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    await finished(child, 'restic snapshots');
    const found = SnapshotList.parse(JSON.parse(stdout)).find((s) => s.paths.includes(`/${name}`));
    if (!found) throw new Error(`no snapshot of /${name} for image ${imageId}`);
    return found.id;
  });
}

/** One raw restore: dump to a file, convert to qcow2, dump removed. Answers the step seconds. */
async function rawRestore(
  target: RawTarget,
  snapshotId: string,
  scratch: string,
  out: string,
): Promise<Record<string, number>> {
  const dumped = join(scratch, 'disk.0.raw');
  const cmd = rawRestoreCommands(resticArgs(target), snapshotId, 'disk.0.raw', dumped, out);
  const steps: Record<string, number> = {};
  await withPassword(PASSWORD, async (env) => {
    steps.dump = (
      await timed(async () => {
        const file = await open(dumped, 'wx', 0o600);
        try {
          await finished(
            spawn('restic', cmd.dump, { env, stdio: ['ignore', file.fd, 'pipe'] }),
            'restic dump',
          );
        } finally {
          await file.close();
        }
      })
    ).seconds;
  });
  steps.convert = (await timed(() => run({ file: 'qemu-img', args: cmd.convert }))).seconds;
  steps.remove = (await timed(() => rm(dumped))).seconds;
  return steps;
}

/**
 * Requests a restore and follows it to its end; answers the seconds from just before the call to
 * the execution's recorded `endedAt`, and the state changes the polls saw (coarse).
 */
async function timeLifeboatRestore(
  api: Api,
  imageId: number,
  body: Record<string, unknown>,
): Promise<{ seconds: number; phases: string[] }> {
  const requestedAt = Date.now();
  const requested = await api('POST', `/images/${imageId}/restore`, body);
  const phases: string[] = [];
  let seen = '';
  const execution = await followToEnd(api, String(requested.id), requestedAt, (e) => {
    const state = `${e.state}/${e.phase}`;
    if (state !== seen) {
      phases.push(`+${((Date.now() - requestedAt) / 1000).toFixed(3)}s ${state} (poll)`);
      seen = state;
    }
  });
  if (execution.state !== 'SUCCEEDED')
    throw new Error(
      `restore ${requested.id} ended ${execution.state}: ${JSON.stringify(execution.error ?? {})}`,
    );
  return { seconds: recordedSeconds(requestedAt, execution.endedAt), phases };
}

/** `qemu-img compare` of a restored qcow2 with the VM's raw disk (shared: the VM runs). */
async function sameAsDisk(restored: string, disk: string): Promise<void> {
  await run({ file: 'qemu-img', args: ['compare', '-U', '-f', 'qcow2', '-F', 'raw', restored, disk] });
}

/** Runs the benchmark; every resource it creates is removed before it returns or throws. */
export async function runRestoreBench(opts: {
  sizeMiB: number;
  runs: number;
  log: (line: string) => void;
}): Promise<RestoreSummary> {
  const { log, sizeMiB } = opts;
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    log(`load average at start: ${loadText()}`);
    const sshd = await startSshd();
    cleanups.push(() => sshd.stop());
    const server = `${sshd.host}:${sshd.port}`;
    process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
    // The repository on /dev/shm when it has room, as in `bench full`; the restores go to the
    // temp dir's disk.
    const repoRoot = await targetRoot(sizeMiB);
    cleanups.push(() => rm(repoRoot, { recursive: true, force: true }));
    const outRoot = await mkdtemp(join(tmpdir(), 'lifeboat-bench-restores-'));
    cleanups.push(() => rm(outRoot, { recursive: true, force: true }));

    log(`creating VM ${DOMAIN} with a ${sizeMiB} MiB raw disk of incompressible data`);
    const vm = await startFilledVm(DOMAIN, sizeMiB);
    cleanups.push(() => vm.destroy());
    const disk = (vm.disks[0] as { path: string }).path;
    const stack = await startStack();
    cleanups.push(() => stack.down());
    const vmId = await waitForVm(stack.api, DOMAIN);
    const base = join(repoRoot, 'lifeboat-restic');
    const datastore = await stack.api('POST', '/datastores', {
      name: 'bench-restore',
      driver: 'restic',
      attributes: {
        BASE_PATH: base,
        RESTIC_SFTP_SERVER: server,
        RESTIC_PASSWORD: PASSWORD,
        RESTIC_COMPRESSION: 'auto',
      },
    });
    log('the backup restored by every run');
    const backup = await timeLifeboatBackup(stack, vmId, Number(datastore.id));
    log(`backup: ${backup.seconds.toFixed(2)} s to image ${backup.imageId} READY`);
    const target = { base, server, vmId };
    cleanups.push(async () => removeResticCache(await resticRepoId(target, PASSWORD).catch(() => '')));
    const snapshotId = await snapshotOf(target, backup.imageId, 'disk.0.raw');

    const samples = new Samples<RestoreContender>();
    for (const { round: r, name } of interleave(RESTORE_CONTENDERS, opts.runs)) {
      const dir = join(outRoot, `${name}-${r}`);
      let seconds: number;
      let detail: string;
      let restored: string;
      if (name === 'lifeboat_restore') {
        const out = await timeLifeboatRestore(stack.api, backup.imageId, restoreRequest(r, dir));
        seconds = out.seconds;
        detail = out.phases.join(', ');
        restored = join(dir, `bench-restore-${r}-disk-0.qcow2`);
      } else {
        const scratch = await mkdtemp(join(tmpdir(), 'lifeboat-bench-dump-'));
        restored = join(dir, 'disk-0.qcow2');
        try {
          await mkdir(dir, { recursive: true });
          const start = performance.now();
          const steps = await rawRestore(target, snapshotId, scratch, restored);
          seconds = secondsSince(start);
          detail = Object.entries(steps)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(' + ');
        } finally {
          await rm(scratch, { recursive: true, force: true });
        }
      }
      // The first round proves both restores exact (outside the timing).
      if (r === 1) await sameAsDisk(restored, disk);
      await rm(dir, { recursive: true, force: true });
      samples.add(name, seconds);
      log(`round ${r} ${name}: ${seconds.toFixed(2)} s (${detail}); load ${loadText()}`);
    }
    for (const line of samples.describe()) log(line);
    return summarizeRestore({ sizeMiB, backupS: backup.seconds, samples });
  } finally {
    log('cleaning up (VM, repository, restores, local stack, sshd)');
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((e) => log(`cleanup: ${e}`));
  }
}
