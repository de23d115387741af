/**
 * A second libvirt daemon on this machine, for tests that need two real hosts: libvirtd in a
 * mount namespace of its own (`unshare --mount --propagation private`), where its config, state,
 * cache, log and run folders (/etc/libvirt, /var/lib/libvirt, /var/cache/libvirt,
 * /var/log/libvirt, /run/libvirt) are bind mounts of folders under one scratch root; its sockets
 * are in that root too, outside the namespace's private mounts, so clients reach it with
 * `qemu+unix:///system?socket=<root>/sock/libvirt-sock`. Its `host_uuid` is its own, so libvirt
 * sees two hosts (a migration between the two daemons is allowed). QEMU's console output goes to
 * files (`stdio_handler = "file"`): no virtlogd is needed in the namespace.
 *
 * Nothing of the machine's own libvirt is read or written: the namespace's mounts never
 * propagate out, and the copy of /etc/libvirt is made from scratch (the machine's domain and
 * network definitions are not in it). Disk files elsewhere (/var/lib/lifeboat/...) are shared by
 * both daemons, like shared storage between two hypervisors.
 *
 * `stop()` destroys the daemon's domains, stops libvirtd, kills whatever still runs in the
 * namespace (QEMU processes), which ends the namespace and its mounts, and removes the root. A
 * run killed before `stop()` is swept by the next start of the same name.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '#drivers/exec.ts';
import { ensureLibvirt } from '#local/libvirtd.ts';

/** Parent of the second daemons' scratch roots. */
export const SECOND_LIBVIRT_ROOT = '/var/lib/lifeboat/test-hosts';

/** The folders libvirtd keeps its things in, each replaced inside the namespace. */
const PRIVATE_FOLDERS = {
  etc: '/etc/libvirt',
  lib: '/var/lib/libvirt',
  cache: '/var/cache/libvirt',
  log: '/var/log/libvirt',
  run: '/run/libvirt',
} as const;

/** A running second libvirt daemon. */
export interface SecondLibvirtd {
  /** `qemu+unix:///system?socket=...`: what virsh and the runner connect to. */
  uri: string;
  /** The daemon's host UUID (`host_uuid`), not the machine's. */
  hostUuid: string;
  root: string;
  /** `virsh -c <uri> ...args`, stdout. */
  virsh(...args: string[]): Promise<string>;
  /** libvirtd's own log and its QEMU logs, for a failing test's message. */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/** The mount namespace of a process (`mnt:[inode]`), or undefined when it is gone. */
async function mountNamespace(pid: number | string): Promise<string | undefined> {
  return readlink(`/proc/${pid}/ns/mnt`).catch(() => undefined);
}

/** Pids of every process in mount namespace `ns`. */
async function processesIn(ns: string): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  const found: number[] = [];
  for (const pid of pids) if ((await mountNamespace(pid)) === ns) found.push(Number(pid));
  return found;
}

/**
 * Kills every process of the namespace held by `holderPid` (its libvirtd and QEMU processes
 * included), if that pid still holds a namespace other than ours.
 */
async function killNamespace(holderPid: number): Promise<void> {
  const ns = await mountNamespace(holderPid);
  if (!ns || ns === (await mountNamespace('self'))) return;
  for (let round = 0; round < 50; round++) {
    const pids = await processesIn(ns);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, round < 10 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Removes what a previous run of `name` left (its namespace's processes, its root). */
async function sweep(root: string): Promise<void> {
  const holder = Number((await readFile(join(root, 'holder.pid'), 'utf8').catch(() => '')).trim());
  if (holder > 1) {
    const cmdline = await readFile(`/proc/${holder}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('sleep')) await killNamespace(holder);
  }
  await rm(root, { recursive: true, force: true });
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts a second libvirtd named `name` (its root is `/var/lib/lifeboat/test-hosts/<name>`),
 * after the machine's own (which the first runner uses) is up. Resolves once virsh answers on
 * its socket.
 */
export async function startSecondLibvirtd(name: string): Promise<SecondLibvirtd> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`bad second libvirtd name ${name}`);
  // The machine's daemon first: its /run/libvirt must exist for the namespace to mount over it.
  await ensureLibvirt();
  const root = join(SECOND_LIBVIRT_ROOT, name);
  await sweep(root);
  const sock = join(root, 'sock');
  for (const dir of [root, sock, ...Object.keys(PRIVATE_FOLDERS).map((d) => join(root, d))]) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  }
  await mkdir(join(root, 'etc', 'qemu'), { mode: 0o755 });
  const hostUuid = randomUUID();
  await writeFile(
    join(root, 'etc', 'libvirtd.conf'),
    [
      `unix_sock_dir = "${sock}"`,
      'unix_sock_rw_perms = "0700"',
      `host_uuid = "${hostUuid}"`,
      `log_outputs = "3:file:${join(PRIVATE_FOLDERS.log, 'libvirtd.log')}"`,
      '',
    ].join('\n'),
  );
  await writeFile(join(root, 'etc', 'qemu.conf'), 'stdio_handler = "file"\n');

  const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', 'infinity'], {
    stdio: 'ignore',
  });
  const uri = `qemu+unix:///system?socket=${join(sock, 'libvirt-sock')}`;
  let daemon: ChildProcess | undefined;
  const stop = async () => {
    if (daemon && holder.pid) {
      const names = await run(
        { file: 'virsh', args: ['-c', uri, 'list', '--name'] },
        { timeoutMs: 10_000 },
      ).catch(() => ({ stdout: '' }));
      for (const domain of names.stdout.split('\n').filter(Boolean)) {
        await run({ file: 'virsh', args: ['-c', uri, 'destroy', domain] }, { timeoutMs: 20_000 }).catch(
          () => {},
        );
      }
      daemon.kill('SIGTERM');
      const timer = setTimeout(() => daemon?.kill('SIGKILL'), 5000);
      await exited(daemon);
      clearTimeout(timer);
    }
    // QEMU processes a failed destroy left, then the holder: the namespace and its mounts end.
    if (holder.pid) await killNamespace(holder.pid);
    holder.kill('SIGKILL');
    await exited(holder);
    await rm(root, { recursive: true, force: true });
  };
  try {
    const pid = holder.pid;
    if (!pid) throw new Error('unshare did not start');
    await writeFile(join(root, 'holder.pid'), `${pid}\n`);
    const ours = await mountNamespace('self');
    await waitFor(
      'the new mount namespace',
      async () => {
        const ns = await mountNamespace(pid);
        return ns !== undefined && ns !== ours;
      },
      5000,
    );
    for (const [dir, target] of Object.entries(PRIVATE_FOLDERS)) {
      await run({
        file: 'nsenter',
        args: ['-t', String(pid), '-m', 'mount', '--bind', join(root, dir), target],
      });
    }
    const out = await open(join(root, 'daemon.out'), 'a');
    try {
      daemon = spawn(
        'nsenter',
        ['-t', String(pid), '-m', '/usr/sbin/libvirtd', '--pid-file', join(root, 'libvirtd.pid')],
        { stdio: ['ignore', out.fd, out.fd] },
      );
    } finally {
      await out.close();
    }
    const started = daemon;
    await waitFor(
      `libvirtd on ${uri}`,
      async () => {
        if (started.exitCode !== null) throw new Error(`libvirtd exited ${started.exitCode}`);
        return run({ file: 'virsh', args: ['-c', uri, 'list', '--name'] }, { timeoutMs: 5000 }).then(
          () => true,
          () => false,
        );
      },
      30_000,
    );
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
  return {
    uri,
    hostUuid,
    root,
    virsh: async (...args) => (await run({ file: 'virsh', args: ['-c', uri, ...args] })).stdout,
    async logs() {
      const log = join(root, 'log');
      const files = await readdir(log, { recursive: true }).catch(() => [] as string[]);
      const texts = await Promise.all(
        [join(root, 'daemon.out'), ...files.map((f) => join(log, f))].map(
          async (f) => `== ${f}\n${await readFile(f, 'utf8').catch(() => '')}`,
        ),
      );
      return texts.join('\n');
    },
    stop,
  };
}
