/**
 * An rbd chain through a runner that dies, on restic and on rsync (a pool of its own in the run's
 * one-node Ceph of test/helpers/ceph-pool.ts, a shut-off libvirt VM on an rbd image, random data
 * written with `rbd import-diff`): a FULL and an increment stored; the next increment's runner, in
 * a process of its own (test/helpers/runner-child.ts), SIGKILLed while it streams the export to a
 * slowed datastore; start-up reconcile then stops its leftover tools and removes the snapshot it
 * made, and no other; that increment tried again and one more succeed, and every point restores
 * byte-identical (sha256 of `rbd export` of the snapshot of that point). Then KEEP_LAST's flatten
 * merges the chain's first three points into a new base, from which the last points still restore.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  BackupResult,
  BackupTask,
  FlattenTask,
  RestoreTask,
  TaskDatastore,
} from '#core/contracts/tasks.ts';
import { hostDrivers } from '#runner/drivers.ts';
import { Journal } from '#runner/journal.ts';
import { silentLogger } from '#runner/log.ts';
import { PROCESS_GROUPS_FILE, ProcessRegistry } from '#runner/process-registry.ts';
import { reconcileUnfinished } from '#runner/reconcile.ts';
import { Reporter } from '#runner/reporter.ts';
import { hostKeyPath, sealedSecretResolver } from '#runner/sealed-secrets.ts';
import { runBackup } from '#runner/tasks/backup.ts';
import { resolveTarget, type TaskContext } from '#runner/tasks/context.ts';
import { runFlatten } from '#runner/tasks/flatten.ts';
import { runRestore } from '#runner/tasks/restore.ts';
import { sealedDatastore } from '#runner/testing/fakes.ts';
import { type CephPool, cephPool } from '../helpers/ceph-pool.ts';
import { TEST_HOST_KEY } from '../helpers/host-key.ts';
import {
  ensureLibvirt,
  kvmUsable,
  readDisk,
  removeTestVm,
  TEST_VM_ROOT,
  URI,
  virsh,
} from '../helpers/libvirt.ts';
import { writeRandom } from '../helpers/rbd-write.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const CHILD = join(import.meta.dirname, '../helpers/runner-child.ts');

let ceph: CephPool;
let sshd: Sshd;

beforeAll(async () => {
  await ensureLibvirt();
  [ceph, sshd] = await Promise.all([cephPool(), startSshd()]);
  // The runner's drivers (here and in the child) find the cluster and the backup server as a host's would.
  process.env.CEPH_CONF = ceph.conf;
  process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
}, 300_000);
afterAll(async () => {
  await Promise.all([ceph?.stop(), sshd?.stop()]);
});

/** Pids whose command line holds every one of `words`. */
async function processesWith(...words: string[]): Promise<number[]> {
  const found: number[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (words.every((w) => cmd.includes(w))) found.push(Number(pid));
  }
  return found;
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not seen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The two datastores' chains share nothing but the cluster: they run side by side.
describe.concurrent.each(['restic', 'rsync'] as const)(
  'an rbd chain on %s through a runner killed mid-export',
  (store) => {
    const name = `lb-h13r-${store}`;
    const image = `${name}-vda`;
    const spec = () => `${ceph.pool}/${image}`;
    const cp = (n: number) => `lifeboat-h13r-${store}-${n}`;
    let dir: string;
    let stateDir: string;
    let base: string;

    beforeAll(async () => {
      await removeTestVm(name);
      dir = join(TEST_VM_ROOT, name);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await ceph.rbd('create', '--size', `${SIZE / MiB}M`, spec());
      const type = (await kvmUsable()) ? 'kvm' : 'qemu';
      const xml = `<domain type='${type}'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
  <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/><source protocol='rbd' name='${spec()}'><host name='${ceph.mon.host}' port='${ceph.mon.port}'/></source><target dev='vda' bus='virtio'/></disk>
  </devices></domain>`;
      await writeFile(join(dir, 'domain.xml'), xml);
      await virsh('define', join(dir, 'domain.xml'));
      stateDir = await mkdtemp(join(tmpdir(), `lb-h13r-state-${store}-`));
      await writeFile(hostKeyPath(stateDir), TEST_HOST_KEY.privateKey, { mode: 0o600 });
      base = await mkdtemp(join(tmpdir(), `lb-h13r-store-${store}-`));
    }, 120_000);
    afterAll(async () => {
      await removeTestVm(name);
      await ceph.rbd('snap', 'purge', spec()).catch(() => {});
      await ceph.rbd('rm', spec()).catch(() => {});
      await rm(stateDir, { recursive: true, force: true });
      await rm(base, { recursive: true, force: true });
    });

    /** The task's datastore; `slow` limits its upload (so a kill falls mid-export). */
    const datastore = (slow = false): TaskDatastore =>
      store === 'restic'
        ? sealedDatastore(
            { RESTIC_PASSWORD: 'h13r-pw' },
            { id: 140, attributes: { BASE_PATH: base, ...(slow ? { RESTIC_BWLIMIT: '256' } : {}) } },
          )
        : {
            id: 141,
            driver: 'rsync',
            attributes: {
              BASE_PATH: base,
              RSYNC_HOST: `${sshd.host}:${sshd.port}`,
              RSYNC_USER: 'root',
              ...(slow ? { RSYNC_ARGS: '-aS --bwlimit=256' } : {}),
            },
            sealedSecrets: null,
          };
    const backupTask = (n: number, taskId: string, slow = false): BackupTask => ({
      v: 1,
      kind: 'backup',
      taskId,
      token: `token-${taskId}`,
      heartbeatSeconds: 120,
      vm: { id: 8, domain: name, state: 'POWEROFF' },
      disks: [{ id: 0, target: 'vda', source: spec(), format: 'rbd', driver: 'rbd' }],
      config: { FS_FREEZE: 'NONE', MODE: 'INCREMENT', INCREMENT_MODE: 'CBT' },
      increment: {
        chain: 1,
        parent: n === 0 ? null : n - 1,
        id: n,
        checkpoint: cp(n),
        parentCheckpoint: n === 0 ? null : cp(n - 1),
      },
      datastore: datastore(slow),
      imageId: 80 + n,
    });
    const ctx = (taskId: string): TaskContext => ({
      signal: new AbortController().signal,
      workDir: join(stateDir, 'work', taskId),
      stateDir,
      restoreRoots: [join(stateDir, 'restores')],
      progress: { phase() {}, bytes() {}, flush: async () => {} },
      drivers: hostDrivers(URI),
      target: (ds) => resolveTarget(ds, sealedSecretResolver(hostKeyPath(stateDir)), []),
      workDirOf: (id) => join(stateDir, 'work', id),
      abortRunning: async () => false,
      log: silentLogger,
    });
    const snapshots = async () =>
      (JSON.parse(await ceph.rbd('snap', 'ls', '--format', 'json', spec())) as { name: string }[])
        .map((s) => s.name)
        .sort();
    const exportSha = async (at: string) => {
      const out = await mkdtemp(join(tmpdir(), 'lb-h13r-export-'));
      try {
        await ceph.rbd('export', '--no-progress', at, join(out, 'x.raw'));
        return sha(await readFile(join(out, 'x.raw')));
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    };
    /** Restores one point into files under the restore root; the sha256 of the disk it wrote. */
    const restored = async (
      point: Pick<RestoreTask, 'taskId' | 'name' | 'backupId' | 'disks' | 'increment' | 'chain'>,
    ) => {
      const out = await runRestore(
        {
          v: 1,
          kind: 'restore',
          token: 't',
          heartbeatSeconds: 120,
          imageId: 80,
          vmId: 8,
          datastore: datastore(),
          target: point.name,
          confine: true,
          template: null,
          define: null,
          inPlace: null,
          pool: null,
          ...point,
        },
        ctx(point.taskId),
      );
      return sha(await readDisk(out.disks[0]?.path as string, 'qcow2', 0, SIZE));
    };

    it('reconcile removes only the killed backup’s snapshot; the chain goes on, every point restores, KEEP_LAST flattens it', async () => {
      const backups: BackupResult[] = [];
      const expected: string[] = [];
      const point = async (n: number, extent: { offset: number; length: number }) => {
        await writeRandom(ceph.conf, spec(), [extent]);
        backups[n] = await runBackup(backupTask(n, `h13r/b${n}`), ctx(`b${n}`));
        expected[n] = await exportSha(`${spec()}@${cp(n)}`);
      };
      await point(0, { offset: 0, length: 4 * MiB });
      await ceph.rbd('snap', 'create', `${spec()}@operator-keep`);
      await point(1, { offset: 5 * MiB + 4096, length: MiB });

      // The next increment, by a runner of its own, killed while its export streams (6 MiB of new
      // random data to a datastore limited to 256 KiB/s: over 20 s to go).
      await writeRandom(ceph.conf, spec(), [{ offset: 8 * MiB, length: 6 * MiB }]);
      const killed = backupTask(2, `h13r/b2-killed-${store}`, true);
      const child: ChildProcess = spawn(
        process.execPath,
        ['--import', 'tsx', CHILD, JSON.stringify({ stateDir, libvirtUri: URI, task: killed })],
        { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
      );
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        // restic reads the export itself; rsync sends the diff the export wrote into the work folder.
        const marks = store === 'restic' ? ['export-diff', cp(2)] : ['rsync', 'disk.0.inc2.rbdiff'];
        await waitFor(async () => (await processesWith(...marks)).length > 0, 60_000, marks.join(' '));
        await new Promise((r) => setTimeout(r, 500));
        expect(child.exitCode).toBeNull();
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      // What the dead runner left: its snapshot (and, until reconcile, its tools).
      expect(await snapshots()).toEqual([cp(0), cp(1), cp(2), 'operator-keep'].sort());

      const done = await reconcileUnfinished({
        journal: await Journal.open(join(stateDir, 'journal.jsonl')),
        reporter: new Reporter(
          { sendSuccess: async () => {}, sendFailure: async () => {}, sendHeartbeat: async () => {} },
          silentLogger,
          1,
        ),
        drivers: hostDrivers(URI),
        secrets: sealedSecretResolver(hostKeyPath(stateDir)),
        stateDir,
        log: silentLogger,
        processes: ProcessRegistry.open(join(stateDir, PROCESS_GROUPS_FILE), silentLogger),
        orphanGraceMs: 2000,
      });
      expect(done).toEqual([
        {
          taskId: killed.taskId,
          actions: expect.arrayContaining([`removed snapshot ${spec()}@${cp(2)}`]),
        },
      ]);
      expect(await snapshots()).toEqual([cp(0), cp(1), 'operator-keep'].sort());
      expect(await processesWith(cp(2))).toEqual([]);

      // The same increment again (as the control plane's retry names it), then one more.
      backups[2] = await runBackup(backupTask(2, 'h13r/b2'), ctx('b2'));
      expected[2] = await exportSha(`${spec()}@${cp(2)}`);
      expect(backups[2].chainReset).toBeNull();
      await point(3, { offset: 14 * MiB + 512, length: MiB });
      expect(backups.map((b) => b.disks[0]?.file)).toEqual([
        'disk.0.rbd',
        'disk.0.inc1.rbdiff',
        'disk.0.inc2.rbdiff',
        'disk.0.inc3.rbdiff',
      ]);
      expect(new Set(expected).size).toBe(4);
      expect(await snapshots()).toEqual([cp(2), cp(3), 'operator-keep'].sort());

      const chainPoint = (b: BackupResult) => ({
        backupId: b.backupId,
        disks: [{ id: 0, file: b.disks[0]?.file as string }],
      });
      for (let n = 0; n < 4; n++) {
        const got = await restored({
          taskId: `h13r/r${n}`,
          name: `h13r-${store}-p${n}`,
          backupId: backups[0]?.backupId as string,
          disks: [{ id: 0, file: 'disk.0.rbd' }],
          increment: n === 0 ? null : n,
          chain: backups.slice(1, n + 1).map(chainPoint),
        });
        expect(got, `point ${n}`).toBe(expected[n]);
      }

      // KEEP_LAST: the FULL and the first two increments merged into a new base.
      const flatten: FlattenTask = {
        v: 1,
        kind: 'flatten',
        taskId: 'h13r/flatten',
        token: 't',
        heartbeatSeconds: 120,
        vmId: 8,
        imageId: 80,
        datastore: datastore(),
        points: backups.slice(0, 3).map(chainPoint),
        template: '<domain/>',
      };
      const flat = await runFlatten(flatten, ctx('flatten'));
      expect(flat.disks).toEqual([
        expect.objectContaining({ id: 0, file: 'disk.0.rbd.qcow2', virtualSize: SIZE }),
      ]);
      const fromBase = (n: number) =>
        restored({
          taskId: `h13r/f${n}`,
          name: `h13r-${store}-f${n}`,
          backupId: flat.backupId,
          disks: [{ id: 0, file: 'disk.0.rbd.qcow2' }],
          increment: n === 2 ? null : n,
          chain: n === 2 ? [] : [chainPoint(backups[3] as BackupResult)],
        });
      expect(await fromBase(2), 'the new base').toBe(expected[2]);
      expect(await fromBase(3), 'the last increment on the new base').toBe(expected[3]);
    }, 300_000);
  },
);
