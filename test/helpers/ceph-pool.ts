/**
 * One Ceph cluster for a whole test run, each test file in a pool of its own.
 *
 * Starting the one-node cluster of test/helpers/ceph.ts costs some 11 to 25 s; five files need
 * one. The integration project's global setup ({@link setup}) serves the run's cluster from the
 * vitest process itself, started at the first file that asks for it (a run with no Ceph file
 * starts none) and stopped when the run ends; the vitest process is its owner, so a run killed
 * outright leaves a cluster the next start of any cluster removes (test/helpers/ceph.ts
 * `removeOrphans`). Each {@link cephPool} then creates a pool of a fresh name in it and drops it
 * at `stop()`: files see neither each other's images nor each other's snapshots, and every
 * libvirt disk and rbd call names its pool. Without the setup (a file run by another config, or
 * `LIFEBOAT_TEST_CEPH=per-file`), each call starts a cluster of its own as before.
 *
 * A test that stops, kills or fills the cluster on purpose must use `startCeph` for a cluster of
 * its own: the shared one has no `kill()`.
 *
 * The files ask over HTTP on a Unix socket in a folder only root may enter (mkdtemp's 0700): the
 * setup runs in the vitest process, the files in workers of their own.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { TestProject } from 'vitest/node';
import { run } from '#drivers/exec.ts';
import { type CephCluster, startCeph } from './ceph.ts';

/** One test file's part of a cluster: a pool of its own; `stop()` drops it. */
export type CephPool = Pick<CephCluster, 'conf' | 'pool' | 'mon' | 'env' | 'rbd' | 'ceph' | 'stop'>;

/** What the setup answers a file: how to reach the run's cluster, and the file's own pool. */
interface SharedPool {
  conf: string;
  mon: { host: string; port: number };
  pool: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Unix socket of the run's Ceph server (test/helpers/ceph-pool.ts `setup`), if any. */
    lifeboatCeph: { socket: string } | undefined;
  }
}

const CALL_TIMEOUT_MS = 60_000;

function sharedSocket(): string | undefined {
  try {
    return inject('lifeboatCeph')?.socket;
  } catch {
    return undefined; // not in a vitest worker
  }
}

/**
 * A pool of a fresh name for this test file in the run's cluster (started by the first file
 * that asks), or a cluster of its own without the run's setup. Call `stop()` in afterAll.
 */
export async function cephPool(): Promise<CephPool> {
  const socket = sharedSocket();
  if (!socket) return startCeph();
  const shared = await ask(socket, 'POST', '/pool');
  const env = { CEPH_CONF: shared.conf };
  const tool = async (file: string, args: string[]) =>
    (await run({ file, args, env }, { timeoutMs: CALL_TIMEOUT_MS })).stdout;
  let dropped = false;
  return {
    conf: shared.conf,
    pool: shared.pool,
    mon: shared.mon,
    env,
    ceph: (...args) => tool('ceph', args),
    rbd: (...args) => tool('rbd', args),
    stop: async () => {
      if (dropped) return;
      dropped = true;
      // The setup drops it while the next file runs (and frees its memstore for them).
      await ask(socket, 'DELETE', `/pool/${shared.pool}`).catch(() => {});
    },
  };
}

/** One question to the setup's server; its JSON answer. */
function ask(socket: string, method: string, path: string): Promise<SharedPool> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        if (res.statusCode === 200) resolve(JSON.parse(body) as SharedPool);
        else reject(new Error(`the run's Ceph cluster: ${body}`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * vitest global setup of the integration project: serves the run's one Ceph cluster, started
 * at the first file's question (again after a failed start) and stopped when the run ends.
 * A pool takes some 4 s to be usable (its placement group must peer before the first write):
 * one is always made ready ahead, while the file before runs, and a file's pool is dropped
 * after it.
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.LIFEBOAT_TEST_CEPH === 'per-file') {
    project.provide('lifeboatCeph', undefined);
    return async () => {};
  }
  const dir = await mkdtemp(join(tmpdir(), 'lb-ceph-sock-'));
  const socket = join(dir, 'ceph.sock');
  let cluster: Promise<CephCluster> | undefined;
  /** The pool the next file gets, being made ready. */
  let spare: Promise<string> | undefined;
  /** Pools handed out: the only ones a file may have dropped. */
  const handed = new Set<string>();
  let count = 0;
  const fresh = () => `lbt-${++count}`;
  /** Calls to the cluster still going: the cluster stops after them (else they hang until their timeout). */
  const going = new Set<Promise<unknown>>();
  const track = <T>(call: Promise<T>): Promise<T> => {
    going.add(call);
    const forget = () => going.delete(call);
    call.then(forget, forget);
    return call;
  };
  const prepare = (c: CephCluster) =>
    track(
      (async () => {
        const pool = fresh();
        await c.ceph('osd', 'pool', 'create', pool, '8');
        await c.rbd('pool', 'init', pool);
        return pool;
      })(),
    );
  const start = async () => {
    const c = await startCeph({ pool: fresh() });
    spare = Promise.resolve(c.pool); // its first pool is ready: the first file's
    return c;
  };
  const givePool = async (): Promise<SharedPool> => {
    cluster ??= start();
    const starting = cluster;
    const c = await starting.catch((error: unknown) => {
      if (cluster === starting) cluster = undefined; // the next file tries again
      throw error;
    });
    const mine = spare ?? prepare(c);
    spare = prepare(c);
    spare.catch(() => {}); // a failed one is made again at the next question
    const pool = await mine.catch(() => prepare(c));
    handed.add(pool);
    return { conf: c.conf, mon: c.mon, pool };
  };
  const dropPool = async (pool: string): Promise<void> => {
    if (!handed.delete(pool) || !cluster) return;
    const c = await cluster;
    await c.ceph('osd', 'pool', 'rm', pool, pool, '--yes-i-really-really-mean-it');
  };
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    let answer: Promise<object>;
    if (req.method === 'POST' && url === '/pool') answer = givePool();
    else if (req.method === 'DELETE' && url.startsWith('/pool/')) {
      // Answered at once: the file need not wait for it.
      track(dropPool(url.slice('/pool/'.length))).catch(() => {});
      answer = Promise.resolve({});
    } else answer = Promise.reject(new Error(`no ${req.method} ${url}`));
    answer.then(
      (body) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      },
      (error: unknown) => {
        res.statusCode = 500;
        res.end(error instanceof Error ? error.message : String(error));
      },
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, resolve);
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  project.provide('lifeboatCeph', { socket });
  return async () => {
    server.close();
    server.closeAllConnections();
    const started = await cluster?.catch(() => undefined);
    await Promise.allSettled([...going]);
    await started?.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
