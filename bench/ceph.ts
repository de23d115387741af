/**
 * `npm run bench -- ceph`: a running VM on a Ceph rbd image of incompressible data (a one-node
 * cluster of test/helpers/ceph.ts), with MODE=INCREMENT. Each round, interleaved: a FULL backup
 * through Lifeboat (API call to image READY, as `bench incremental` times it: followed as `--wait`
 * follows it, READY being the instant Commit records; bench/lifeboat.ts) into a fresh restic
 * repository over SFTP on a loopback sshd; the raw pipeline of the same image into another fresh
 * repository with the same options (`restic init`, then `rbd snap create`, `rbd export SNAP - |
 * restic backup --stdin`, `rbd snap rm`); then 1% of the disk's 64 KiB blocks rewritten by the
 * guest with fresh random data, and Lifeboat's increment. Medians with their spread.
 *
 * changed_bytes is what the guest rewrote; sent_bytes the growth of Lifeboat's repository folder
 * during the increment (restic's own overhead counts against Lifeboat).
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '#drivers/exec.ts';
import { type CephCluster, startCeph } from '../test/helpers/ceph.ts';
import { kvmUsable, removeTestVm, TEST_VM_ROOT, virsh } from '../test/helpers/libvirt.ts';
import { startSshd } from '../test/helpers/sshd.ts';
import { allocatedBytes, BLOCK, randomBlocks, rewriteBlocks } from './incremental.ts';
import { describeRun, timeLifeboatBackup } from './lifeboat.ts';
import { loadText, round, timed } from './measure.ts';
import { finished, resticArgs, withPassword } from './raw.ts';
import { fillIncompressible, startStack, waitForVm } from './stack.ts';
import { incrementFigures, ratio, Samples } from './stats.ts';

/** The last stdout line of `bench ceph`; seconds and bytes are medians over the rounds. */
export interface CephSummary {
  disk_gib: number;
  lifeboat_full_s: number;
  raw_full_s: number;
  /** lifeboat_full_s / raw_full_s (target <= 1.10). */
  ratio_full: number;
  incremental_s: number;
  /** incremental_s / lifeboat_full_s (target <= 0.05). */
  time_ratio: number;
  changed_bytes: number;
  sent_bytes: number;
  /** sent_bytes / changed_bytes (target <= 2). */
  bytes_ratio: number;
  repeat: number;
  spread_s: Record<string, { min: number; max: number }>;
}

export const CEPH_CONTENDERS = ['lifeboat_full', 'raw_full', 'incremental'] as const;
type CephContender = (typeof CEPH_CONTENDERS)[number];

const DOMAIN = `lifeboat-bench-ceph-${process.pid}`;
const PASSWORD = 'bench-only password';

/** Builds the summary from the rounds' seconds and the increments' bytes. */
export function summarizeCeph(m: {
  sizeMiB: number;
  samples: Samples<CephContender>;
  changedBytes: number;
  sentBytes: readonly number[];
}): CephSummary {
  const med = (name: CephContender) => m.samples.of(name).median;
  return {
    disk_gib: round(m.sizeMiB / 1024, 3),
    lifeboat_full_s: med('lifeboat_full'),
    raw_full_s: med('raw_full'),
    ratio_full: ratio(med('lifeboat_full'), med('raw_full')),
    ...incrementFigures({ ...m, fullS: med('lifeboat_full'), incrementalS: med('incremental') }),
    repeat: Math.min(...CEPH_CONTENDERS.map((c) => m.samples.of(c).runs.length)),
    spread_s: m.samples.ranges(),
  };
}

/** The raw pipeline: a fresh repository, a snapshot, `rbd export SNAP - | restic backup --stdin`. */
async function rawFull(ceph: CephCluster, image: string, base: string, server: string): Promise<number> {
  const args = resticArgs({ base, server, vmId: 1 });
  const snap = `${image}@bench-raw`;
  return withPassword(PASSWORD, async (env) => {
    const { seconds } = await timed(async () => {
      await finished(
        spawn('restic', [...args, 'init', '--repository-version', '2'], {
          env,
          stdio: ['ignore', 'ignore', 'pipe'],
        }),
        'restic init',
      );
      await ceph.rbd('snap', 'create', '--no-progress', snap);
      const exporter = spawn('rbd', ['export', '--no-progress', snap, '-'], {
        env: { ...process.env, ...ceph.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const restic = spawn('restic', [...args, 'backup', '--stdin', '--stdin-filename', 'disk.0.raw'], {
        env,
        stdio: [exporter.stdout, 'ignore', 'pipe'],
      });
      exporter.stdout?.destroy();
      await Promise.all([finished(exporter, 'rbd export'), finished(restic, 'restic backup --stdin')]);
      await ceph.rbd('snap', 'rm', '--no-progress', snap);
    });
    return seconds;
  });
}

/** Runs the benchmark; everything it creates is removed before it returns or throws. */
export async function runCeph(opts: {
  sizeMiB: number;
  runs: number;
  log: (line: string) => void;
}): Promise<CephSummary> {
  const { log, sizeMiB } = opts;
  const bytes = sizeMiB * 2 ** 20;
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    log(`load average at start: ${loadText()}`);
    // The image, plus the objects a snapshot keeps when the guest rewrites them, in memory.
    const ceph = await startCeph({ memstoreBytes: Math.max(4 * 2 ** 30, bytes * 3) });
    cleanups.push(() => ceph.stop());
    process.env.CEPH_CONF = ceph.conf;
    const sshd = await startSshd();
    cleanups.push(() => sshd.stop());
    process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
    const server = `${sshd.host}:${sshd.port}`;

    await removeTestVm(DOMAIN);
    const dir = join(TEST_VM_ROOT, DOMAIN);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const image = `${ceph.pool}/${DOMAIN}-vda`;
    log(`filling ${image} (${sizeMiB} MiB of incompressible data)`);
    const fill = join(dir, 'fill.raw');
    await writeFile(fill, '');
    await run({ file: 'truncate', args: ['-s', `${sizeMiB}M`, fill] });
    await fillIncompressible(fill, bytes);
    await run(
      { file: 'rbd', args: ['import', '--no-progress', fill, image], env: ceph.env },
      { timeoutMs: 3_600_000 },
    );
    await rm(fill);
    const type = (await kvmUsable()) ? 'kvm' : 'qemu';
    await writeFile(
      join(dir, 'domain.xml'),
      `<domain type='${type}'><name>${DOMAIN}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <metadata><lifeboat:vm xmlns:lifeboat="urn:lifeboat:vm:1"><lifeboat:backup_config><lifeboat:MODE>INCREMENT</lifeboat:MODE></lifeboat:backup_config></lifeboat:vm></metadata>
  <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
  <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/><source protocol='rbd' name='${image}'><host name='${ceph.mon.host}' port='${ceph.mon.port}'/></source><target dev='vda' bus='virtio'/><alias name='ua-vda'/></disk>
  </devices></domain>`,
    );
    await virsh('define', join(dir, 'domain.xml'));
    cleanups.push(() => removeTestVm(DOMAIN));
    await virsh('start', DOMAIN);

    const stack = await startStack();
    cleanups.push(() => stack.down());
    const vmId = await waitForVm(stack.api, DOMAIN);
    log(`local stack up in ${stack.home}; VM id ${vmId}`);

    const samples = new Samples<CephContender>();
    const sentBytes: number[] = [];
    const blocks = bytes / BLOCK;
    const changedBytes = Math.round(blocks / 100) * BLOCK;
    for (let r = 1; r <= opts.runs; r++) {
      const done = (name: CephContender, seconds: number, detail = '') => {
        samples.add(name, seconds);
        log(`round ${r} ${name}: ${seconds.toFixed(2)} s${detail}; load ${loadText()}`);
      };
      const base = join(dir, `lifeboat-${r}`);
      const datastore = await stack.api('POST', '/datastores', {
        name: `bench-ceph-${r}`,
        driver: 'restic',
        attributes: { BASE_PATH: base, RESTIC_SFTP_SERVER: server, RESTIC_PASSWORD: PASSWORD },
      });
      const full = await timeLifeboatBackup(stack, vmId, Number(datastore.id), { reset: r > 1 });
      for (const line of describeRun(full)) log(line);
      done('lifeboat_full', full.seconds);

      const rawBase = join(dir, `raw-${r}`);
      done('raw_full', await rawFull(ceph, image, rawBase, server));
      await rm(rawBase, { recursive: true, force: true });

      await rewriteBlocks(randomBlocks(blocks, Math.round(blocks / 100)), dir, log, DOMAIN);
      const before = await allocatedBytes(base);
      const inc = await timeLifeboatBackup(stack, vmId, Number(datastore.id));
      for (const line of describeRun(inc)) log(line);
      const sent = (await allocatedBytes(base)) - before;
      const last = ((await stack.api('GET', `/images/${inc.imageId}`)).increments as { type: string }[]).at(
        -1,
      );
      if (inc.imageId !== full.imageId || last?.type !== 'INCREMENT')
        throw new Error(`the second backup is not an increment of image ${full.imageId}`);
      sentBytes.push(sent);
      done('incremental', inc.seconds, ` (datastore grew ${sent} bytes; changed ${changedBytes})`);
      await rm(base, { recursive: true, force: true });
    }
    for (const line of samples.describe()) log(line);
    return summarizeCeph({ sizeMiB, samples, changedBytes, sentBytes });
  } finally {
    log('cleaning up (VM, local stack, sshd, ceph)');
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((e) => log(`cleanup: ${e}`));
  }
}
