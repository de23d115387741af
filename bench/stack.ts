/**
 * What a benchmark runs against: the whole local stack (control plane and a runner for this host)
 * in a temporary home, a loopback sshd as the backup server, and a running test VM whose disk is
 * filled with incompressible bytes. Each piece comes with its own teardown.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runnerStateDir } from '#local/config.ts';
import { localDown } from '#local/down.ts';
import { freeStackPorts } from '#local/ports.ts';
import { localUp } from '#local/up.ts';
import { createTestVm, type TestVm, virsh } from '../test/helpers/libvirt.ts';

/** A tiny client of the Lifeboat HTTP API; non-2xx answers throw with the error body. */
export type Api = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<Record<string, unknown> & { items?: unknown[] }>;

export function apiClient(endpoint: string, token: string): Api {
  return async (method, path, body) => {
    const res = await fetch(`${endpoint}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : {};
  };
}

/** The local stack of a benchmark. */
export interface Stack {
  home: string;
  api: Api;
  /** The supervisor's log (the runner's lines are in it), for profiling. */
  logPath: string;
  /** The runner's state folder (journal; work folders with the snapshot overlays). */
  runnerDir: string;
  down(): Promise<void>;
}

/**
 * `lifeboat local up` in a fresh temporary home on free ports, with the runner. The caller's
 * environment is inherited by the runner: set LIFEBOAT_SSH_CONFIG before.
 */
export async function startStack(): Promise<Stack> {
  const home = await mkdtemp(join(tmpdir(), 'lifeboat-bench-'));
  const ports = await freeStackPorts();
  await writeFile(join(home, 'config.json'), JSON.stringify({ ports, runner: true, demo: false }));
  const { endpoint, token } = await localUp({ home });
  return {
    home,
    api: apiClient(endpoint, token),
    logPath: join(home, 'logs', 'supervisor.log'),
    runnerDir: runnerStateDir(home),
    async down() {
      await localDown({ home });
      await rm(home, { recursive: true, force: true });
    },
  };
}

/**
 * Writes `bytes` of incompressible data (AES-128-CTR keystream under a random key: as random
 * as /dev/urandom for compression and deduplication, several times faster) over `path` and
 * syncs it, so the benchmark starts with nothing dirty in the page cache.
 */
export async function fillIncompressible(path: string, bytes: number): Promise<void> {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zeros = Buffer.alloc(4 << 20);
  const handle = await open(path, 'r+');
  try {
    for (let offset = 0; offset < bytes; offset += zeros.length) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - offset)));
      await handle.write(chunk, 0, chunk.length, offset);
    }
    await handle.sync();
    // A check of the last MiB: a wrong size computation must not benchmark a sparse disk.
    const tail = Buffer.alloc(Math.min(bytes, 1 << 20));
    await handle.read(tail, 0, tail.length, bytes - tail.length);
    if (tail.every((b) => b === 0)) throw new Error(`${path} was not filled up to ${bytes} bytes`);
  } finally {
    await handle.close();
  }
}

/** A running VM with one raw disk of `sizeMiB` full of incompressible data. */
export async function startFilledVm(name: string, sizeMiB: number): Promise<TestVm> {
  const vm = await createTestVm({ name, disks: [{ sizeMiB, format: 'raw' }], running: false, nic: false });
  try {
    await fillIncompressible((vm.disks[0] as { path: string }).path, sizeMiB * 2 ** 20);
    await virsh('start', name);
    return vm;
  } catch (error) {
    await vm.destroy().catch(() => {});
    throw error;
  }
}

/** Waits until the runner has reported `domain` as a RUNNING VM; answers its id. */
export async function waitForVm(api: Api, domain: string, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { items = [] } = await api('GET', '/vms');
    const vm = (items as { id: number; domain: string; state: string }[]).find((v) => v.domain === domain);
    if (vm?.state === 'RUNNING') return vm.id;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the runner did not report VM ${domain} as RUNNING within ${timeoutMs / 1000} s`);
}

/**
 * Waits until the VM's record names `source` as the source of disk 0 again. The runner's
 * inventory can report a snapshot overlay while a backup runs (the persistent XML points at it
 * then), and the next backup is refused with DiskMismatch until a later report (every 60 s by
 * default) fixes it.
 */
export async function waitForDiskSource(
  api: Api,
  vmId: number,
  source: string,
  timeoutMs = 150_000,
): Promise<number> {
  const start = performance.now();
  for (;;) {
    const vm = await api('GET', `/vms/${vmId}`);
    const disk = (vm.disks as { source?: string }[] | undefined)?.[0];
    if (disk?.source === source) return (performance.now() - start) / 1000;
    if (performance.now() - start > timeoutMs)
      throw new Error(`VM ${vmId} still records disk 0 as ${disk?.source} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
