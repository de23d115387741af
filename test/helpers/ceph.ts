/**
 * A throwaway one-node Ceph cluster for tests (FIELD-NOTES "Ceph"): one mon, one mgr and one
 * memstore OSD, everything (config, keyrings, data, sockets, pid and log files) under a mkdtemp
 * folder, on ports chosen free at start so that several test runs can share the machine. Tools
 * find it through `CEPH_CONF` (passed in each command's env, never the process's own). cephx is
 * off (`auth ... required = none`), so QEMU opens the images with no libvirt secret. About 11 s
 * to start. The Debian packages it needs are installed first when missing (as scripts/setup.sh
 * does on a fresh machine).
 *
 * Every ceph call runs under a timeout: a cluster in trouble (a full memstore) hangs instead of
 * failing. `stop()` kills only the daemons whose pid files are in its own folder.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '#drivers/exec.ts';
import { freePorts } from '#local/ports.ts';

/** The Debian packages of the cluster and of QEMU's rbd block driver. */
export const CEPH_PACKAGES = ['ceph-mon', 'ceph-osd', 'ceph-mgr', 'ceph-common', 'qemu-block-extra'];

const CALL_TIMEOUT_MS = 60_000;
/** Enough for every test image, generously (a full memstore hangs rbd calls). */
const MEMSTORE_BYTES = 4 * 1024 ** 3;

/** A running throwaway cluster. */
export interface CephCluster {
  /** Folder holding everything of the cluster. */
  dir: string;
  /** Its ceph.conf (what `CEPH_CONF` names). */
  conf: string;
  /** The client.admin keyring (cephx is off: present for tools that insist on one). */
  keyring: string;
  /** A pool initialised for rbd. */
  pool: string;
  /** Monitor address for libvirt's `<host name port>` (the msgr v1 one). */
  mon: { host: string; port: number };
  /** `{ CEPH_CONF: conf }`: the env every ceph/rbd command of the test gets. */
  env: Record<string, string>;
  /** Runs `rbd ...args` against the cluster, under a timeout; stdout. */
  rbd(...args: string[]): Promise<string>;
  /** Runs `ceph ...args` against the cluster, under a timeout; stdout. */
  ceph(...args: string[]): Promise<string>;
  /** Stops the cluster's daemons (only its own) and removes its folder. Idempotent. */
  stop(): Promise<void>;
  /** Kills the daemons but keeps the folder: calls against the cluster then hang. */
  kill(): Promise<void>;
}

/** Installs {@link CEPH_PACKAGES} that are missing (root only; apt-get, non-interactive). */
export async function ensureCephPackages(): Promise<void> {
  const missing: string[] = [];
  for (const name of CEPH_PACKAGES) {
    // dpkg's own format field, not a template placeholder.
    const format = '-f=$' + '{Status}';
    const status = await run({ file: 'dpkg-query', args: ['-W', format, name] }).catch(() => ({
      stdout: '',
    }));
    if (!status.stdout.includes('install ok installed')) missing.push(name);
  }
  if (missing.length === 0) return;
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await run({ file: 'apt-get', args: ['update', '-qq'], env }, { timeoutMs: 300_000 });
  await run(
    { file: 'apt-get', args: ['install', '-y', '-qq', '--no-install-recommends', ...missing], env },
    { timeoutMs: 600_000 },
  );
}

/** Starts a fresh cluster with pool `pool`. Call `stop()` in afterAll. */
export async function startCeph(
  options: {
    pool?: string /** Memstore size (default 4 GiB): a benchmark's disk needs more. */;
    memstoreBytes?: number;
  } = {},
): Promise<CephCluster> {
  await ensureCephPackages();
  await removeOrphans();
  const pool = options.pool ?? 'rbd';
  const dir = await mkdtemp(join(tmpdir(), PREFIX));
  // Whose cluster this is: one whose test process is gone is an orphan (see removeOrphans).
  await writeFile(join(dir, OWNER), `${process.pid} ${await startTime(process.pid)}\n`);
  // QEMU (libvirt-qemu) reads the config to reach the monitor.
  await chmod(dir, 0o755);
  const [v2, v1] = (await freePorts(2)) as [number, number];
  const conf = join(dir, 'ceph.conf');
  const keyring = join(dir, 'keyring');
  const env = { CEPH_CONF: conf };
  const fsid = randomUUID();
  for (const sub of ['run', 'log', 'mon/ceph-a', 'mgr/ceph-x', 'osd']) {
    await mkdir(join(dir, sub), { recursive: true });
  }
  await writeFile(
    conf,
    `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd objectstore = memstore
memstore device bytes = ${options.memstoreBytes ?? MEMSTORE_BYTES}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = ${dir}/run
admin socket = ${dir}/run/$cluster-$name.asok
pid file = ${dir}/run/$cluster-$name.pid
log file = ${dir}/log/$cluster-$name.log
keyring = ${keyring}
mon data = ${dir}/mon/$cluster-$id
mgr data = ${dir}/mgr/$cluster-$id
osd data = ${dir}/osd/$cluster-$id
`,
  );
  await chmod(conf, 0o644);
  const tool = async (file: string, args: string[], timeoutMs = CALL_TIMEOUT_MS) =>
    (await run({ file, args, env }, { timeoutMs })).stdout;
  const ceph = (...args: string[]) => tool('ceph', args);
  const rbd = (...args: string[]) => tool('rbd', args);
  const cluster: CephCluster = {
    dir,
    conf,
    keyring,
    pool,
    mon: { host: '127.0.0.1', port: v1 },
    env,
    rbd,
    ceph,
    stop: async () => {
      await killDaemons(dir);
      await rm(dir, { recursive: true, force: true });
    },
    kill: () => killDaemons(dir),
  };
  try {
    await tool('ceph-authtool', [
      '--create-keyring',
      keyring,
      '--gen-key',
      '-n',
      'mon.',
      '--cap',
      'mon',
      'allow *',
    ]);
    await tool('ceph-authtool', [
      keyring,
      '--gen-key',
      '-n',
      'client.admin',
      '--cap',
      'mon',
      'allow *',
      '--cap',
      'osd',
      'allow *',
      '--cap',
      'mgr',
      'allow *',
    ]);
    const monmap = join(dir, 'monmap');
    await tool('monmaptool', [
      '--create',
      '--fsid',
      fsid,
      '--addv',
      'a',
      `[v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]`,
      monmap,
    ]);
    await tool('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring]);
    await tool('ceph-mon', ['-i', 'a']);
    await tool('ceph', [
      'auth',
      'get-or-create',
      'mgr.x',
      'mon',
      'allow profile mgr',
      'osd',
      'allow *',
      '-o',
      join(dir, 'mgr/ceph-x/keyring'),
    ]);
    await tool('ceph-mgr', ['-i', 'x']);
    const uuid = randomUUID();
    const id = (await ceph('osd', 'new', uuid)).trim();
    if (!/^\d+$/.test(id)) throw new Error(`ceph osd new answered ${id}`);
    const osdDir = join(dir, `osd/ceph-${id}`);
    await mkdir(osdDir, { recursive: true });
    await ceph(
      'auth',
      'get-or-create',
      `osd.${id}`,
      'mon',
      'allow profile osd',
      'mgr',
      'allow profile osd',
      'osd',
      'allow *',
      '-o',
      join(osdDir, 'keyring'),
    );
    await tool('ceph-osd', ['-i', id, '--mkfs', '--osd-uuid', uuid]);
    await tool('ceph-osd', ['-i', id]);
    await ceph('osd', 'pool', 'create', pool, '8');
    await tool('rbd', ['pool', 'init', pool], 120_000);
    return cluster;
  } catch (error) {
    await cluster.stop().catch(() => {});
    throw error;
  }
}

const PREFIX = 'lb-ceph-';
const OWNER = 'owner';

/** The start time of process `pid` (field 22 of /proc/PID/stat), to tell a reused pid apart. */
async function startTime(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

/**
 * Stops the clusters a killed test process left behind (their owner process is gone); clusters
 * of test runs still going (other helpers, other files) are left alone.
 */
async function removeOrphans(): Promise<void> {
  for (const name of (await readdir(tmpdir()).catch(() => [] as string[])).filter((n) =>
    n.startsWith(PREFIX),
  )) {
    const dir = join(tmpdir(), name);
    const owner = (await readFile(join(dir, OWNER), 'utf8').catch(() => '')).trim().split(' ');
    const pid = Number(owner[0]);
    if (!(pid > 1) || (alive(pid) && (await startTime(pid)) === owner[1])) continue;
    await killDaemons(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Kills the daemons whose pid files are in `dir/run`, checking each pid's command line names
 * this cluster (a pid reused by another process is left alone); waits for them to end.
 */
async function killDaemons(dir: string): Promise<void> {
  const runDir = join(dir, 'run');
  const pids: number[] = [];
  for (const file of (await readdir(runDir).catch(() => [] as string[])).filter((f) => f.endsWith('.pid'))) {
    const pid = Number((await readFile(join(runDir, file), 'utf8').catch(() => '')).trim());
    if (pid > 1 && (await isOurs(pid, dir))) pids.push(pid);
  }
  // The conf holds the folder's name; daemons started from it have it in their environment only,
  // so the pid file (in our folder) is what ties them to us, and the executable must be ceph's.
  for (const pid of pids) signal(pid, 'SIGKILL');
  for (let i = 0; i < 100 && pids.some((pid) => alive(pid)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function isOurs(pid: number, dir: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!/^(\/usr\/bin\/)?ceph-(mon|mgr|osd)\0/.test(cmdline)) return false;
  const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
  return environ.split('\0').includes(`CEPH_CONF=${join(dir, 'ceph.conf')}`);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
