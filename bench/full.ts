/**
 * `npm run bench -- full`: a running VM's disk of incompressible data backed up through Lifeboat
 * (API call to image READY) to a restic datastore over SFTP and to an rsync datastore over ssh,
 * then by raw `restic` and raw `rsync -aS` of the same bytes to the same kind of target on the
 * same loopback sshd, by the hand pipeline (bench/hand.ts: the same consistent read of the
 * running VM done with libvirt's and restic's own tools), and by the peer `virtnbdbackup`
 * (bench/peer.ts, to a local folder). Also the peak extra disk the host used during the
 * Lifeboat backups.
 *
 * Each Lifeboat run is followed as `lifeboat backup VM --wait` follows it (bench/lifeboat.ts: GET
 * /executions/{id} at the CLI's interval, every second backing off to every 3 s) and timed from
 * what the stack records, not from when a poll saw a change: from the bench's clock just before
 * POST /vms/{id}/backup to the image READY (Commit's recorded instant), less the runner's
 * `verifying` phase (its log line as the read-back starts, to the image's `verifiedAt`), which
 * gives the moment its data is stored. The verification after the backup, which reads the stored
 * disk back and hashes it, is reported apart (`verify_*_s`, and `verify_share`: its largest
 * fraction of a backup's time).
 *
 * `control_cpu_s` (bench/first-byte.ts, bench/control-cpu.ts) is the CPU the control plane (the
 * supervisor with its gateway, Lambda workers, Step Functions interpreter and SQS emulator, and
 * the DynamoDB Local JVM) spends during the restic run: the backup's orchestration, and the polls
 * of a follow as `--wait` makes them, each a gateway request, an authorizer and an API invocation
 * with their table reads (`ddb_calls` counts them with the rest); the median of the rounds, with
 * `control_cpu_spread`. `control_cpu_stored_s` is the same up to the data stored (the first poll
 * that sees the verification under way), the instant the ratios are taken at.
 *
 * The runs are interleaved: `repeat` rounds (3 by default), each running every contender once
 * on the same VM and data, so a slow spell of the host falls on all of them; each is reported
 * by its median with its spread (min, max), and the ratios are of medians.
 *
 * Raw restic runs Lifeboat's own command, `dd if=DISK bs=1M | restic backup --stdin
 * --stdin-filename disk.0.raw` (restic cannot give a file another name, and Lifeboat streams so
 * that NBD exports and files are handled alike), with the same repository options, into a fresh
 * repository, timing `init` + `backup` since Lifeboat's first backup of a VM creates its
 * repository too. `restic backup DISK` (file mode) is timed once as well, to tell what the stdin
 * design costs from what Lifeboat's orchestration costs. Each Lifeboat run goes to a datastore of
 * its own (a fresh repository or folder), as each raw run does.
 *
 * Targets live on /dev/shm when it has room: the backup data then does not show in the `df` of
 * the host filesystem, whose growth is what `extra_disk_mib` measures (overlays, caches, logs).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPids } from '#local/pids.ts';
import { startSshd } from '../test/helpers/sshd.ts';
import { describeCpu } from './control-cpu.ts';
import { type Observed, type ObservedSummary, observedSummary, observeRun } from './first-byte.ts';
import { handRestic, handRsync } from './hand.ts';
import { describeRun, followToEnd, type LifeboatRun, logEntries, timeLifeboatBackup } from './lifeboat.ts';
import { cpuSeconds, DiskSampler, filesystemsReader, loadText, round, usedBytes } from './measure.ts';
import { runPeer } from './peer.ts';
import { rawRestic, rawRsync, removeResticCache, resticRepoId } from './raw.ts';
import { startFilledVm, startStack, waitForDiskSource, waitForVm } from './stack.ts';
import { interleave, ratio, Samples, type Spread } from './stats.ts';

/** The last stdout line of `bench full`; seconds are medians of the interleaved runs. */
export interface FullSummary {
  disk_gib: number;
  lifeboat_restic_s: number;
  raw_restic_s: number;
  ratio_restic: number;
  lifeboat_rsync_s: number;
  raw_rsync_s: number;
  ratio_rsync: number;
  extra_disk_mib: number;
  /** The hand pipeline to restic (pull-mode NBD export, nbdcopy | restic backup --stdin). */
  hand_s: number;
  /** lifeboat_restic_s / hand_s. */
  ratio_hand: number;
  /** The hand pipeline to rsync (external snapshot, rsync -aS, blockcommit). */
  hand_rsync_s: number;
  /** lifeboat_rsync_s / hand_rsync_s. */
  ratio_hand_rsync: number;
  /** virtnbdbackup's copy of the same running VM to a local folder. */
  peer_full_s: number;
  /** Rounds of interleaved runs behind each median. */
  repeat: number;
  /** The spread of each contender's runs, seconds. */
  spread_s: Record<string, { min: number; max: number }>;
  /** The verification after a Lifeboat backup to restic (read back and hashed), median seconds. */
  verify_restic_s?: number;
  /** The same for rsync (the server hashes the stored file). */
  verify_rsync_s?: number;
  /** The larger of the two. */
  verify_s?: number;
  /** The larger of verify_restic_s / lifeboat_restic_s and verify_rsync_s / lifeboat_rsync_s. */
  verify_share?: number;
}

/** The contenders of `bench full`, in the order each round runs them. */
export const CONTENDERS = [
  'lifeboat_restic',
  'raw_restic',
  'hand_restic',
  'lifeboat_rsync',
  'raw_rsync',
  'hand_rsync',
  'peer_full',
] as const;
export type Contender = (typeof CONTENDERS)[number];

export interface FullOptions {
  /** Disk size in MiB (4096 for the issue's 4 GiB). */
  sizeMiB: number;
  /** Rounds of interleaved runs (every contender once per round); medians are reported. */
  runs: number;
  log: (line: string) => void;
}

// Unique per run: a concurrent benchmark on the same host (same code, another worktree) would
// otherwise remove this VM as its own leftover when it creates its VM.
const DOMAIN = process.env.LIFEBOAT_BENCH_VM || `lifeboat-bench-full-${process.pid}`;
const PASSWORD = 'bench-only password';

/** Builds the summary (rounded) from each contender's spread and the peak extra bytes. */
export function summarize(m: {
  sizeMiB: number;
  runs: Record<Contender, Spread>;
  spread: Record<string, { min: number; max: number }>;
  extraBytes: number;
  /** The verification after each Lifeboat backup, by driver. */
  verify?: { restic: Spread; rsync: Spread };
}): FullSummary {
  const med = (name: Contender) => m.runs[name].median;
  const verify = m.verify;
  return {
    disk_gib: round(m.sizeMiB / 1024, 3),
    lifeboat_restic_s: round(med('lifeboat_restic'), 2),
    raw_restic_s: round(med('raw_restic'), 2),
    ratio_restic: ratio(med('lifeboat_restic'), med('raw_restic')),
    lifeboat_rsync_s: round(med('lifeboat_rsync'), 2),
    raw_rsync_s: round(med('raw_rsync'), 2),
    ratio_rsync: ratio(med('lifeboat_rsync'), med('raw_rsync')),
    extra_disk_mib: round(m.extraBytes / 2 ** 20, 1),
    hand_s: round(med('hand_restic'), 2),
    ratio_hand: ratio(med('lifeboat_restic'), med('hand_restic')),
    hand_rsync_s: round(med('hand_rsync'), 2),
    ratio_hand_rsync: ratio(med('lifeboat_rsync'), med('hand_rsync')),
    peer_full_s: round(med('peer_full'), 2),
    repeat: Math.min(...CONTENDERS.map((c) => m.runs[c].runs.length)),
    spread_s: m.spread,
    ...(verify && {
      verify_restic_s: round(verify.restic.median, 2),
      verify_rsync_s: round(verify.rsync.median, 2),
      verify_s: round(Math.max(verify.restic.median, verify.rsync.median), 2),
      verify_share: Math.max(
        ratio(verify.restic.median, med('lifeboat_restic')),
        ratio(verify.rsync.median, med('lifeboat_rsync')),
      ),
    }),
  };
}

/** A folder for the backup targets: on /dev/shm when it holds twice the disk, else the temp dir. */
export async function targetRoot(sizeMiB: number): Promise<string> {
  const shm = await statfs('/dev/shm').catch(() => undefined);
  const room = shm ? shm.bavail * shm.bsize : 0;
  return mkdtemp(join(room > 2 * sizeMiB * 2 ** 20 ? '/dev/shm' : tmpdir(), 'lifeboat-bench-targets-'));
}

/** Bytes allocated under `dir` (du), 0 when it does not exist. */
async function allocatedBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  let sum = 0;
  for (const entry of entries) {
    const s = await stat(join(dir, entry)).catch(() => undefined);
    if (s?.isFile()) sum += s.blocks * 512;
  }
  return sum;
}

/** The runner's log lines between two instants, as offsets in seconds from `fromMs`. */
async function runnerLines(logPath: string, fromMs: number, toMs: number): Promise<string[]> {
  const entries = logEntries(await readFile(logPath, 'utf8').catch(() => ''));
  return entries
    .filter(
      (e) => e.child === 'runner' && e.at >= fromMs && e.at <= toMs && e.message !== 'inventory reported',
    )
    .map((e) => {
      // What the runner says, not who says it.
      const {
        time: _t,
        level: _l,
        component: _c,
        hostName: _h,
        hostId: _i,
        message: _m,
        msg: _g,
        child: _k,
        ...rest
      } = e.fields;
      const text = Object.keys(rest).length > 0 ? `${e.message} ${JSON.stringify(rest)}` : e.message;
      return `  +${((e.at - fromMs) / 1000).toFixed(3)}s runner: ${text.slice(0, 240)}`;
    });
}

/**
 * CPU seconds so far of the local stack's processes and of this one: where a 2-core host spends
 * its cycles during a backup (the runner's children are restic, ssh, dd, rsync, sha256sum).
 */
async function stackCpu(home: string): Promise<Record<string, number>> {
  const pids = await readPids(join(home, 'pids.json'));
  const out: Record<string, number> = {};
  if (pids) {
    out['supervisor (gateway, lambdas, sfn, sqs)'] = (await cpuSeconds(pids.supervisor)).self;
    for (const [name, pid] of Object.entries(pids.children)) {
      const cpu = await cpuSeconds(pid);
      out[name] = cpu.self;
      if (name === 'runner') out['runner children (restic, ssh, dd, rsync, sha256sum)'] = cpu.children;
    }
  }
  const own = process.cpuUsage();
  out['bench (polling, sampling)'] = (own.user + own.system) / 1e6;
  return out;
}

const mib = (bytes = 0) => (bytes / 2 ** 20).toFixed(1);

/** Runs the benchmark; every resource it creates is removed before it returns or throws. */
export async function runFull(opts: FullOptions): Promise<FullSummary & ObservedSummary> {
  const { log, sizeMiB } = opts;
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((e) => log(`cleanup: ${e}`));
  };
  const onSignal = () => {
    log('interrupted: cleaning up');
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`load average at start: ${loadText()}`);
    const targets = await targetRoot(sizeMiB);
    cleanups.push(() => rm(targets, { recursive: true, force: true }));
    const sshd = await startSshd();
    cleanups.push(() => sshd.stop());
    const server = `${sshd.host}:${sshd.port}`;
    // Inherited by the supervisor and so by the runner: both drivers use this ssh config.
    process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;

    log(`creating VM ${DOMAIN} with a ${sizeMiB} MiB raw disk of incompressible data`);
    const t = performance.now();
    const vm = await startFilledVm(DOMAIN, sizeMiB);
    cleanups.push(() => vm.destroy());
    const disk = (vm.disks[0] as { path: string }).path;
    log(`VM running (${((performance.now() - t) / 1000).toFixed(1)} s); starting the local stack`);
    const stack = await startStack();
    cleanups.push(() => stack.down());
    const vmId = await waitForVm(stack.api, DOMAIN);
    log(`local stack up in ${stack.home}; VM id ${vmId}; targets under ${targets}`);

    // One datastore of each kind per round: each Lifeboat run writes a fresh repository or
    // folder, as each raw run does (and no runner cache remembers a removed repository).
    const datastores = async (round: number) => {
      const resticBase = join(targets, `lifeboat-restic-${round}`);
      const rsyncBase = join(targets, `lifeboat-rsync-${round}`);
      const restic = await stack.api('POST', '/datastores', {
        name: `bench-restic-${round}`,
        driver: 'restic',
        attributes: {
          BASE_PATH: resticBase,
          RESTIC_SFTP_SERVER: server,
          RESTIC_PASSWORD: PASSWORD,
          RESTIC_COMPRESSION: 'auto',
        },
      });
      const rsync = await stack.api('POST', '/datastores', {
        name: `bench-rsync-${round}`,
        driver: 'rsync',
        attributes: { BASE_PATH: rsyncBase, RSYNC_HOST: server },
      });
      // A new datastore's first capacity measure, asked for now and waited for: left to the
      // dispatcher's next tick (none is due yet), it landed inside the round's first backup,
      // whose control-plane CPU counted both datastores' monitor executions.
      for (const id of [restic.id, rsync.id]) {
        const queued = await stack.api('POST', `/datastores/${id}/monitor`);
        const ended = await followToEnd(stack.api, String(queued.id), Date.now());
        if (ended.state !== 'SUCCEEDED') throw new Error(`datastore ${id}: monitor ${ended.state}`);
      }
      return { restic: Number(restic.id), resticBase, rsync: Number(rsync.id), rsyncBase };
    };

    // The filesystems of the VM's folder and the runner's state (work folders, journal) and the
    // home (logs, emulators' data); backup targets that share one are subtracted from it.
    await mkdir(stack.runnerDir, { recursive: true });
    const fsRead = await filesystemsReader([vm.dir, stack.runnerDir, stack.home]);
    const sameFs = (await stat(targets)).dev === (await stat(vm.dir)).dev;
    if (sameFs) log('warning: targets share the host filesystem; their size is subtracted from df');
    const read = sameFs ? async () => (await fsRead()) - (await allocatedBytes(targets)) : fsRead;

    // Cross-check of df, which other processes on the host move too: the bytes allocated in
    // the VM's folder and the runner's state (snapshot overlays live there). Small folders,
    // walked once a second: the sampler must not take CPU from the backup it measures.
    const ownRead = async () =>
      (await Promise.all([vm.dir, stack.runnerDir].map(allocatedBytes))).reduce((a, b) => a + b, 0);

    let extraBytes = 0;
    const observed: Record<string, Observed<LifeboatRun>[]> = {};
    const lifeboat = async (datastoreId: number, label: string, base: string): Promise<LifeboatRun> => {
      const stale = await waitForDiskSource(stack.api, vmId, disk);
      if (stale > 0.5)
        log(`waited ${stale.toFixed(1)} s for the inventory to name ${disk} again (see DiskMismatch note)`);
      const samplers = [new DiskSampler(read), new DiskSampler(ownRead, 1000)] as const;
      await Promise.all(samplers.map((s) => s.start()));
      const wallStart = Date.now();
      const cpuBefore = await stackCpu(stack.home);
      let run: LifeboatRun;
      try {
        const seen = await observeRun(stack.home, (checkpoint) =>
          timeLifeboatBackup(stack, vmId, datastoreId, { onStored: () => checkpoint('stored') }),
        );
        observed[label] = [...(observed[label] ?? []), seen];
        run = seen.value;
        log(`lifeboat ${label}: first byte ${seen.firstByteS} s; ${describeCpu(seen.cpu)}`);
        if (seen.cpuAt?.stored)
          log(`lifeboat ${label}: to its data stored, ${describeCpu(seen.cpuAt.stored)}`);
        log(`lifeboat ${label}: DynamoDB requests ${JSON.stringify(seen.dynamodb)}`);
      } finally {
        const [peak, own] = await Promise.all(samplers.map((s) => s.stop()));
        extraBytes = Math.max(extraBytes, peak?.peakExtraBytes ?? 0);
        log(
          `lifeboat ${label}: extra disk (df) ${mib(peak?.peakExtraBytes)} MiB over ${peak?.samples} samples; ` +
            `in its own folders ${mib(own?.peakExtraBytes)} MiB; load ${loadText()}`,
        );
        for (const line of await runnerLines(stack.logPath, wallStart, Date.now())) log(line);
        const cpuAfter = await stackCpu(stack.home);
        log(
          `lifeboat ${label}: CPU seconds during the run: ${Object.keys(cpuAfter)
            .map((k) => `${k} ${((cpuAfter[k] ?? 0) - (cpuBefore[k] ?? 0)).toFixed(1)}`)
            .join(', ')}`,
        );
      }
      log(
        `lifeboat ${label}: ${run.seconds.toFixed(3)} s to READY (${run.executionSeconds.toFixed(3)} s to SUCCEEDED), ` +
          `of which ${run.verifySeconds.toFixed(3)} s verifying`,
      );
      for (const line of describeRun(run)) log(line);
      const image = await stack.api('GET', `/images/${run.imageId}`);
      if (Number(image.size) < sizeMiB * 2 ** 20)
        throw new Error(`image ${run.imageId} holds ${image.size} bytes, expected ${sizeMiB} MiB`);
      if (label === 'restic') {
        const id = await resticRepoId({ base, server, vmId }, PASSWORD).catch(() => '');
        await removeResticCache(id);
      }
      await rm(base, { recursive: true, force: true });
      return run;
    };
    const samples = new Samples<Contender>();
    const verifies = new Samples<'restic' | 'rsync'>();
    /** A Lifeboat run's time to its data stored; its verification goes to `verifies`. */
    const stored = (run: LifeboatRun, label: 'restic' | 'rsync'): number => {
      verifies.add(label, run.verifySeconds);
      return run.seconds - run.verifySeconds;
    };
    const diskTarget = (vm.disks[0] as { target: string }).target;
    let stores: Awaited<ReturnType<typeof datastores>> | undefined;
    log(`${opts.runs} rounds of: ${CONTENDERS.join(', ')}`);
    for (const { round, name } of interleave(CONTENDERS, opts.runs)) {
      if (name === 'lifeboat_restic') stores = await datastores(round);
      const ds = stores as NonNullable<typeof stores>;
      const rt = { base: join(targets, `${name}-${round}`), server, vmId };
      const cpu0 = (await cpuSeconds(process.pid)).children;
      let seconds: number;
      let detail = '';
      switch (name) {
        case 'lifeboat_restic':
          seconds = stored(await lifeboat(ds.restic, 'restic', ds.resticBase), 'restic');
          break;
        case 'lifeboat_rsync':
          seconds = stored(await lifeboat(ds.rsync, 'rsync', ds.rsyncBase), 'rsync');
          break;
        case 'raw_restic': {
          // The first raw run is sampled too: what restic alone takes on the host's disk.
          const sampler = round === 1 ? new DiskSampler(read) : undefined;
          await sampler?.start();
          const r = await rawRestic(rt, disk, 'disk.0.raw', PASSWORD, 'stdin').finally(async () => {
            const peak = await sampler?.stop();
            if (peak) log(`raw restic run 1: extra disk (df) ${mib(peak.peakExtraBytes)} MiB`);
          });
          await removeResticCache(await resticRepoId(rt, PASSWORD).catch(() => ''));
          seconds = r.totalS;
          detail = `init ${r.initS.toFixed(2)} + backup ${r.backupS.toFixed(2)}`;
          break;
        }
        case 'raw_rsync': {
          seconds = await rawRsync(rt, disk, 'raw', 'disk.0.raw');
          const copied = (await stat(join(rt.base, String(vmId), 'raw', 'disk.0.raw'))).size;
          if (copied !== sizeMiB * 2 ** 20) throw new Error(`raw rsync copied ${copied} bytes`);
          break;
        }
        case 'hand_restic': {
          await waitForDiskSource(stack.api, vmId, disk);
          const h = await handRestic({
            domain: DOMAIN,
            diskTarget,
            work: join(vm.dir, `hand-${round}`),
            target: rt,
            password: PASSWORD,
            name: 'disk.0.raw',
          });
          await removeResticCache(await resticRepoId(rt, PASSWORD).catch(() => ''));
          seconds = h.totalS;
          detail = Object.entries(h.steps)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(' + ');
          break;
        }
        case 'hand_rsync': {
          await waitForDiskSource(stack.api, vmId, disk);
          const h = await handRsync({
            domain: DOMAIN,
            diskTarget,
            disk,
            work: join(vm.dir, `hand-${round}`),
            target: rt,
            name: 'disk.0.raw',
          });
          const copied = (await stat(join(rt.base, String(vmId), 'raw', 'disk.0.raw'))).size;
          if (copied !== sizeMiB * 2 ** 20) throw new Error(`hand rsync copied ${copied} bytes`);
          seconds = h.totalS;
          detail = Object.entries(h.steps)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(' + ');
          break;
        }
        case 'peer_full': {
          await waitForDiskSource(stack.api, vmId, disk);
          const p = await runPeer({
            domain: DOMAIN,
            level: 'copy',
            raw: true,
            output: rt.base,
            work: join(vm.dir, `peer-${round}`),
          });
          if (p.bytes < sizeMiB * 2 ** 20) throw new Error(`virtnbdbackup wrote ${p.bytes} bytes of data`);
          seconds = p.seconds;
          detail = `${mib(p.bytes)} MiB written`;
          break;
        }
      }
      await rm(rt.base, { recursive: true, force: true });
      samples.add(name, seconds);
      const cpu = (await cpuSeconds(process.pid)).children - cpu0;
      log(
        `round ${round} ${name}: ${seconds.toFixed(2)} s${detail ? ` (${detail})` : ''}; ` +
          `CPU of this process's children ${cpu.toFixed(1)} s; load ${loadText()}`,
      );
    }
    const ft = { base: join(targets, 'raw-restic-file'), server, vmId };
    const f = await rawRestic(ft, disk, 'disk.0.raw', PASSWORD, 'file');
    await removeResticCache(await resticRepoId(ft, PASSWORD).catch(() => ''));
    await rm(ft.base, { recursive: true, force: true });
    log(
      `raw restic (file mode, informational) : ${f.totalS.toFixed(2)} s (init ${f.initS.toFixed(2)} + backup ${f.backupS.toFixed(2)}); load ${loadText()}`,
    );
    for (const line of samples.describe()) log(line);
    for (const line of verifies.describe()) log(`verify after the backup, ${line}`);
    log(
      `host filesystem used now: ${((await usedBytes(vm.dir)) / 2 ** 30).toFixed(2)} GiB; load ${loadText()}`,
    );
    return {
      ...summarize({
        sizeMiB,
        runs: Object.fromEntries(CONTENDERS.map((c) => [c, samples.of(c)])) as Record<Contender, Spread>,
        spread: samples.ranges(),
        extraBytes,
        verify: { restic: verifies.of('restic'), rsync: verifies.of('rsync') },
      }),
      ...observedSummary(observed),
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    log('cleaning up (VM, targets, local stack, sshd)');
    await cleanup();
  }
}
