/**
 * `npm run bench -- incremental`: a running VM's qcow2 disk of incompressible data with
 * MODE=INCREMENT (CBT). A FULL backup (which starts the chain) is timed through the API, then 1%
 * of the disk's 64 KiB blocks are rewritten by the guest at random offsets with fresh random data,
 * then the increment is timed the same way: followed as `lifeboat backup --wait` follows it, from
 * the bench's clock just before the request to the instant Commit records on the chain point
 * (bench/lifeboat.ts). Both go to a restic datastore over SFTP on a
 * loopback sshd. The peer, Debian's `virtnbdbackup` (bench/peer.ts), makes its own full and
 * incremental of the same running VM to a local folder in the same rounds: Lifeboat's FULL, the
 * guest's writes, Lifeboat's increment; Lifeboat's checkpoints deleted (the peer refuses to run
 * beside checkpoints it did not make), the peer's full, as many fresh guest writes, the peer's
 * increment. `repeat` rounds (each a new chain: `reset`, and a new peer folder) give medians and
 * their spread.
 *
 * changed_bytes is what the guest rewrote; sent_bytes is what reached the datastore for the
 * increment: the growth of the repository folder (pack files, index, snapshots), so restic's own
 * overhead counts against Lifeboat, and nothing is taken from Lifeboat's own report.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '#drivers/exec.ts';
import { createTestVm, virsh } from '../test/helpers/libvirt.ts';
import { startSshd } from '../test/helpers/sshd.ts';
import { targetRoot } from './full.ts';
import { describeRun, timeLifeboatBackup } from './lifeboat.ts';
import { loadText, round } from './measure.ts';
import { runPeer } from './peer.ts';
import { fillIncompressible, startStack, waitForVm } from './stack.ts';
import { incrementFigures, ratio, Samples } from './stats.ts';

/** The last stdout line of `bench incremental`; seconds and bytes are medians over the rounds. */
export interface IncrementalSummary {
  disk_gib: number;
  full_s: number;
  incremental_s: number;
  time_ratio: number;
  changed_bytes: number;
  sent_bytes: number;
  bytes_ratio: number;
  /** virtnbdbackup's full of the same running VM to a local folder. */
  peer_full_s: number;
  /** virtnbdbackup's incremental of the same changes. */
  peer_inc_s: number;
  /** full_s / peer_full_s (target <= 1.10). */
  ratio_peer_full: number;
  /** incremental_s / peer_inc_s (target <= 1). */
  ratio_peer_inc: number;
  repeat: number;
  spread_s: Record<string, { min: number; max: number }>;
}

/** The timed contenders of `bench incremental`, in the order each round runs them. */
export const INC_CONTENDERS = ['full', 'incremental', 'peer_full', 'peer_inc'] as const;
export type IncContender = (typeof INC_CONTENDERS)[number];

// Unique per run (see full.ts).
const DOMAIN = `lifeboat-bench-inc-${process.pid}`;
const PASSWORD = 'bench-only password';
export const BLOCK = 64 * 1024;

/** Builds the summary (rounded) from the rounds' seconds and the increments' bytes. */
export function summarizeIncremental(m: {
  sizeMiB: number;
  samples: Samples<IncContender>;
  changedBytes: number;
  /** Growth of the repository for each round's increment. */
  sentBytes: readonly number[];
}): IncrementalSummary {
  const med = (name: IncContender) => m.samples.of(name).median;
  return {
    disk_gib: round(m.sizeMiB / 1024, 3),
    full_s: med('full'),
    ...incrementFigures({ ...m, fullS: med('full'), incrementalS: med('incremental') }),
    peer_full_s: med('peer_full'),
    peer_inc_s: med('peer_inc'),
    ratio_peer_full: ratio(med('full'), med('peer_full')),
    ratio_peer_inc: ratio(med('incremental'), med('peer_inc')),
    repeat: Math.min(...INC_CONTENDERS.map((c) => m.samples.of(c).runs.length)),
    spread_s: m.samples.ranges(),
  };
}

/** `count` distinct block indexes out of `blocks`, at random. */
export function randomBlocks(blocks: number, count: number, random = Math.random): number[] {
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, blocks)) chosen.add(Math.floor(random() * blocks));
  return [...chosen].sort((a, b) => a - b);
}

/** Bytes allocated under `dir`. */
export async function allocatedBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  let sum = 0;
  for (const entry of entries) {
    const s = await stat(join(dir, entry)).catch(() => undefined);
    if (s?.isFile()) sum += s.blocks * 512;
  }
  return sum;
}

/** Deletes the domain's checkpoints whose names start with `prefix` (their bitmaps with them). */
async function deleteCheckpoints(domain: string, prefix: string): Promise<void> {
  const names = (await virsh('checkpoint-list', domain, '--name'))
    .split('\n')
    .map((n) => n.trim())
    .filter((n) => n.startsWith(prefix));
  for (const name of names) await virsh('checkpoint-delete', domain, name);
}

/** Rewrites the chosen 64 KiB blocks with fresh random data as the guest would, then flushes. */
export async function rewriteBlocks(
  chosen: readonly number[],
  dir: string,
  log: (line: string) => void,
  domain: string = DOMAIN,
): Promise<void> {
  log(`rewriting ${chosen.length} blocks of 64 KiB at random offsets, as the guest`);
  const sources = join(dir, 'blocks');
  await mkdir(sources, { recursive: true });
  await chmod(sources, 0o755);
  const alias = '/machine/peripheral/ua-vda/virtio-backend';
  try {
    for (const [i, block] of chosen.entries()) {
      const file = join(sources, `${i}.bin`);
      await writeFile(file, randomBytes(BLOCK), { mode: 0o644 });
      const out = await virsh(
        'qemu-monitor-command',
        domain,
        '--hmp',
        `qemu-io -d ${alias} "write -s ${file} ${block * BLOCK} ${BLOCK}"`,
      );
      if (/error|failed/i.test(out)) throw new Error(`guest write failed: ${out.trim()}`);
    }
    await virsh('qemu-monitor-command', domain, '--hmp', `qemu-io -d ${alias} "flush"`);
  } finally {
    await rm(sources, { recursive: true, force: true });
  }
}

/** Runs the benchmark; every resource it creates is removed before it returns or throws. */
export async function runIncremental(opts: {
  sizeMiB: number;
  /** Rounds (each: FULL, peer full, writes, increment, peer increment). */
  runs: number;
  log: (line: string) => void;
}): Promise<IncrementalSummary> {
  const { log, sizeMiB } = opts;
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    log(`load average at start: ${loadText()}`);
    const sshd = await startSshd();
    cleanups.push(() => sshd.stop());
    process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;

    log(`creating VM ${DOMAIN} with a ${sizeMiB} MiB qcow2 disk of incompressible data, MODE=INCREMENT`);
    const vm = await createTestVm({
      name: DOMAIN,
      disks: [{ sizeMiB, format: 'qcow2' }],
      running: false,
      nic: false,
      backupConfig: { MODE: 'INCREMENT' },
    });
    cleanups.push(() => vm.destroy());
    const disk = (vm.disks[0] as { path: string }).path;
    const raw = join(vm.dir, 'fill.raw');
    await writeFile(raw, '');
    await run({ file: 'truncate', args: ['-s', `${sizeMiB}M`, raw] });
    await fillIncompressible(raw, sizeMiB * 2 ** 20);
    await run({ file: 'qemu-img', args: ['convert', '-n', '-f', 'raw', '-O', 'qcow2', raw, disk] });
    await rm(raw);
    await virsh('start', DOMAIN);

    const stack = await startStack();
    cleanups.push(() => stack.down());
    const vmId = await waitForVm(stack.api, DOMAIN);
    const base = join(vm.dir, 'repo');
    const datastore = await stack.api('POST', '/datastores', {
      name: 'bench-inc',
      driver: 'restic',
      attributes: {
        BASE_PATH: base,
        RESTIC_SFTP_SERVER: `${sshd.host}:${sshd.port}`,
        RESTIC_PASSWORD: PASSWORD,
      },
    });

    const samples = new Samples<IncContender>();
    const sentBytes: number[] = [];
    const blocks = (sizeMiB * 2 ** 20) / BLOCK;
    const changedBytes = Math.round(blocks / 100) * BLOCK;
    const peerRoot = await targetRoot(sizeMiB);
    cleanups.push(() => rm(peerRoot, { recursive: true, force: true }));
    for (let r = 1; r <= opts.runs; r++) {
      const done = (name: IncContender, seconds: number, detail = '') => {
        samples.add(name, seconds);
        log(`round ${r} ${name}: ${seconds.toFixed(2)} s${detail}; load ${loadText()}`);
      };
      log(`round ${r}: FULL backup (starts ${r === 1 ? 'the' : 'a new'} chain)`);
      const full = await timeLifeboatBackup(stack, vmId, Number(datastore.id), { reset: r > 1 });
      for (const line of describeRun(full)) log(line);
      const fullImage = await stack.api('GET', `/images/${full.imageId}`);
      if (fullImage.mode !== 'INCREMENT') throw new Error(`image ${full.imageId} is not a chain`);
      done('full', full.seconds);

      await rewriteBlocks(randomBlocks(blocks, Math.round(blocks / 100)), vm.dir, log);

      const before = await allocatedBytes(base);
      const inc = await timeLifeboatBackup(stack, vmId, Number(datastore.id));
      for (const line of describeRun(inc)) log(line);
      const sent = (await allocatedBytes(base)) - before;
      const image = await stack.api('GET', `/images/${inc.imageId}`);
      const last = (image.increments as { id: number; type: string; size: number }[]).at(-1);
      if (inc.imageId !== full.imageId || last?.type !== 'INCREMENT') {
        throw new Error(
          `the second backup is not an increment of image ${full.imageId}: ${JSON.stringify(last)}`,
        );
      }
      sentBytes.push(sent);
      done(
        'incremental',
        inc.seconds,
        ` (increment ${last.id}: file ${last.size} bytes; datastore grew ${sent} bytes; changed ${changedBytes})`,
      );

      // virtnbdbackup refuses to run beside checkpoints it did not make ("Foreign checkpoint
      // found"): Lifeboat's go (its next round starts a new chain with `reset` anyway), then the
      // peer makes its own full and, after as many fresh guest writes, its increment.
      await deleteCheckpoints(DOMAIN, 'lifeboat');
      const peerOut = join(peerRoot, `peer-${r}`);
      const peerWork = join(vm.dir, `peer-${r}`);
      const peerFull = await runPeer({ domain: DOMAIN, level: 'full', output: peerOut, work: peerWork });
      done('peer_full', peerFull.seconds, ` (${peerFull.bytes} bytes of data)`);
      await rewriteBlocks(randomBlocks(blocks, Math.round(blocks / 100)), vm.dir, log);
      const peerInc = await runPeer({ domain: DOMAIN, level: 'inc', output: peerOut, work: peerWork });
      done('peer_inc', peerInc.seconds, ` (${peerInc.bytes} bytes of data)`);
      await rm(peerOut, { recursive: true, force: true });
      // The peer's checkpoints go too: Lifeboat's next chain starts on a VM like the first's.
      await deleteCheckpoints(DOMAIN, 'virtnbdbackup');
    }
    for (const line of samples.describe()) log(line);
    return summarizeIncremental({ sizeMiB, samples, changedBytes, sentBytes });
  } finally {
    log('cleaning up (VM, local stack, sshd)');
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((e) => log(`cleanup: ${e}`));
  }
}
