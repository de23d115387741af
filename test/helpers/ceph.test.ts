/**
 * The test cluster harness itself: daemons of its own only, stopped with the folder, and a
 * cluster whose test process was killed stopped by the next start (other live clusters kept:
 * the run's shared one of test/helpers/ceph-pool.ts among them, owned by the vitest process).
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '#drivers/exec.ts';
import { startCeph } from './ceph.ts';
import { cephPool } from './ceph-pool.ts';

/** Pids of the ceph daemons whose environment names `conf`. */
async function daemonsOf(conf: string): Promise<number[]> {
  const { stdout } = await run({ file: 'pgrep', args: ['-x', '^ceph-(mon|mgr|osd)$'] }).catch(() => ({
    stdout: '',
  }));
  const pids: number[] = [];
  for (const pid of stdout.split('\n').filter(Boolean).map(Number)) {
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').includes(`CEPH_CONF=${conf}`)) pids.push(pid);
  }
  return pids;
}

describe('one-node Ceph harness', () => {
  it('serves rbd, stops only its own daemons, and a later start stops an orphan', async () => {
    // Another live cluster beside: the run's shared one (a pool in it), or one of this file's
    // own without the run's setup. Neither a stop nor the orphan sweep may touch it.
    // Both started at once; if one fails, the other is stopped before the error goes on.
    const [liveStart, orphanStart] = await Promise.allSettled([cephPool(), startCeph()]);
    if (liveStart.status === 'rejected' || orphanStart.status === 'rejected') {
      if (liveStart.status === 'fulfilled') await liveStart.value.stop();
      if (orphanStart.status === 'fulfilled') await orphanStart.value.stop();
      throw liveStart.status === 'rejected'
        ? liveStart.reason
        : (orphanStart as PromiseRejectedResult).reason;
    }
    const [live, orphan] = [liveStart.value, orphanStart.value];
    try {
      await orphan.rbd('create', '--size', '4M', `${orphan.pool}/probe`);
      expect(JSON.parse(await orphan.rbd('info', '--format', 'json', `${orphan.pool}/probe`)).size).toBe(
        4 * 1024 * 1024,
      );
      expect(await daemonsOf(orphan.conf)).toHaveLength(3);
      expect(await daemonsOf(live.conf)).toHaveLength(3);
      // Its test process is gone: an exited child's pid stands for it.
      const { stdout } = await run({ file: 'sh', args: ['-c', 'echo $$'] });
      await writeFile(join(orphan.dir, 'owner'), `${stdout.trim()} 0\n`);
      const next = await startCeph();
      expect(await daemonsOf(next.conf)).toHaveLength(3);
      expect(await daemonsOf(orphan.conf)).toEqual([]);
      expect(existsSync(orphan.dir)).toBe(false);
      await next.stop();
      expect(await daemonsOf(next.conf)).toEqual([]);
      expect(existsSync(next.dir)).toBe(false);
      expect(await daemonsOf(live.conf)).toHaveLength(3);
      expect(JSON.parse(await live.rbd('ls', '--format', 'json', live.pool))).toEqual([]);
    } finally {
      await orphan.stop();
      await live.stop();
    }
  }, 180_000);
});
