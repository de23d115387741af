/**
 * `npm run bench -- incremental`: a running VM's qcow2 disk of incompressible data with
 * MODE=INCREMENT (CBT). A FULL backup (which starts the chain) is timed through the API, then 1%
 * of the disk's 64 KiB blocks are rewritten by the guest at random offsets with fresh random data,
 * then the increment is timed the same way. Both go to a restic datastore over SFTP on a
 * loopback sshd.
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
import { timeLifeboatBackup } from './lifeboat.ts';
import { loadText, round } from './measure.ts';
import { fillIncompressible, startStack, waitForVm } from './stack.ts';

/** The last stdout line of `bench incremental`. */
export interface IncrementalSummary {
  disk_gib: number;
  full_s: number;
  incremental_s: number;
  time_ratio: number;
  changed_bytes: number;
  sent_bytes: number;
  bytes_ratio: number;
}

const DOMAIN = 'lifeboat-bench-inc';
const PASSWORD = 'bench-only password';
const BLOCK = 64 * 1024;

/** Builds the summary (rounded) from the measured seconds and bytes. */
export function summarizeIncremental(m: {
  sizeMiB: number;
  fullS: number;
  incrementalS: number;
  changedBytes: number;
  sentBytes: number;
}): IncrementalSummary {
  return {
    disk_gib: round(m.sizeMiB / 1024, 3),
    full_s: round(m.fullS, 2),
    incremental_s: round(m.incrementalS, 2),
    time_ratio: round(m.incrementalS / m.fullS, 4),
    changed_bytes: m.changedBytes,
    sent_bytes: m.sentBytes,
    bytes_ratio: round(m.sentBytes / m.changedBytes, 3),
  };
}

/** `count` distinct block indexes out of `blocks`, at random. */
export function randomBlocks(blocks: number, count: number, random = Math.random): number[] {
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, blocks)) chosen.add(Math.floor(random() * blocks));
  return [...chosen].sort((a, b) => a - b);
}

/** Bytes allocated under `dir`. */
async function allocatedBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  let sum = 0;
  for (const entry of entries) {
    const s = await stat(join(dir, entry)).catch(() => undefined);
    if (s?.isFile()) sum += s.blocks * 512;
  }
  return sum;
}

/** Runs the benchmark; every resource it creates is removed before it returns or throws. */
export async function runIncremental(opts: {
  sizeMiB: number;
  pollMs: number;
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

    log('FULL backup (starts the chain)');
    const full = await timeLifeboatBackup(stack.api, vmId, Number(datastore.id), opts.pollMs);
    for (const m of full.timeline) log(`  +${m.t.toFixed(3)}s ${m.what}`);
    const fullImage = await stack.api('GET', `/images/${full.imageId}`);
    if (fullImage.mode !== 'INCREMENT') throw new Error(`image ${full.imageId} is not a chain`);

    const blocks = (sizeMiB * 2 ** 20) / BLOCK;
    const chosen = randomBlocks(blocks, Math.round(blocks / 100));
    log(`rewriting ${chosen.length} of ${blocks} blocks of 64 KiB at random offsets, as the guest`);
    const sources = join(vm.dir, 'blocks');
    await mkdir(sources, { recursive: true });
    await chmod(sources, 0o755);
    const alias = '/machine/peripheral/ua-vda/virtio-backend';
    for (const [i, block] of chosen.entries()) {
      const file = join(sources, `${i}.bin`);
      await writeFile(file, randomBytes(BLOCK), { mode: 0o644 });
      const out = await virsh(
        'qemu-monitor-command',
        DOMAIN,
        '--hmp',
        `qemu-io -d ${alias} "write -s ${file} ${block * BLOCK} ${BLOCK}"`,
      );
      if (/error|failed/i.test(out)) throw new Error(`guest write failed: ${out.trim()}`);
    }
    await virsh('qemu-monitor-command', DOMAIN, '--hmp', `qemu-io -d ${alias} "flush"`);
    await rm(sources, { recursive: true, force: true });
    const changedBytes = chosen.length * BLOCK;

    const before = await allocatedBytes(base);
    log('incremental backup');
    const inc = await timeLifeboatBackup(stack.api, vmId, Number(datastore.id), opts.pollMs);
    for (const m of inc.timeline) log(`  +${m.t.toFixed(3)}s ${m.what}`);
    const sentBytes = (await allocatedBytes(base)) - before;
    const image = await stack.api('GET', `/images/${inc.imageId}`);
    const last = (image.increments as { id: number; type: string; size: number }[]).at(-1);
    if (inc.imageId !== full.imageId || last?.type !== 'INCREMENT') {
      throw new Error(
        `the second backup is not an increment of image ${full.imageId}: ${JSON.stringify(last)}`,
      );
    }
    log(
      `increment ${last.id}: file ${last.size} bytes; datastore grew ${sentBytes} bytes; changed ${changedBytes}; load ${loadText()}`,
    );
    return summarizeIncremental({
      sizeMiB,
      fullS: full.seconds,
      incrementalS: inc.seconds,
      changedBytes,
      sentBytes,
    });
  } finally {
    log('cleaning up (VM, local stack, sshd)');
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((e) => log(`cleanup: ${e}`));
  }
}
