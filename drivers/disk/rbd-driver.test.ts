/**
 * What the rbd driver refuses in a point's stored files before any tool opens them (the names come
 * from a backup: untrusted). No cluster: a refusal comes before any rbd call. The same reading
 * serves a restore into a pool (test/drivers/disk-rbd-pool.test.ts, which needs a cluster).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PointFile } from './driver.ts';
import { RbdDriver } from './rbd-driver.ts';

/** An `rbd export-diff` file from snapshot `from` to `to` with no data. */
function diff(from: string, to: string): Buffer {
  const name = (tag: string, snap: string) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(Buffer.byteLength(snap));
    return Buffer.concat([Buffer.from(tag), len, Buffer.from(snap)]);
  };
  const magic = Buffer.from('rbd diff v1\n', 'latin1');
  return Buffer.concat([magic, name('f', from), name('t', to), Buffer.from('e')]);
}

let dir: string;
// A cluster that is not there: any rbd call would fail (or hang until the deadline).
const driver = new RbdDriver('qemu:///nowhere', { conf: '/nonexistent/ceph.conf', timeoutMs: 2000 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lb-rbd-point-'));
  await writeFile(join(dir, 'full'), Buffer.alloc(4096, 1));
  await writeFile(join(dir, 'a-b'), diff('lifeboat-a', 'lifeboat-b'));
  await writeFile(join(dir, 'b-c'), diff('lifeboat-b', 'lifeboat-c'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A stored file's name and which of our files holds it (paths are known once `dir` is made). */
type Named = [name: string, key: string];
const files = (named: readonly Named[]): PointFile[] =>
  named.map(([name, key]) => ({ name, path: join(dir, key) }));

const restore = (point: Named[]) => driver.restorePoint(files(point), join(dir, 'out', 'x.qcow2'));

describe('restorePoint refuses a point whose files do not make a chain of one disk', () => {
  it.each<[string, Named[]]>([
    [
      'an increment of another disk',
      [
        ['disk.0.rbd', 'full'],
        ['disk.1.inc1.rbdiff', 'a-b'],
      ],
    ],
    [
      'an increment twice',
      [
        ['disk.0.rbd', 'full'],
        ['disk.0.inc1.rbdiff', 'a-b'],
        ['disk.0.inc1.rbdiff', 'b-c'],
      ],
    ],
    [
      'increments out of order',
      [
        ['disk.0.rbd', 'full'],
        ['disk.0.inc2.rbdiff', 'a-b'],
        ['disk.0.inc1.rbdiff', 'b-c'],
      ],
    ],
  ])('%s', async (_what, point) => {
    await expect(restore(point)).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringMatching(
        /^backup file "disk\.\d\.inc\d\.rbdiff" is not the next increment of disk 0$/,
      ),
    });
    // Nothing consumed.
    expect((await readFile(join(dir, 'full'))).length).toBe(4096);
  });

  it('a point without its FULL first, or a file that is no rbd backup file', async () => {
    await expect(restore([['disk.0.inc1.rbdiff', 'a-b']])).rejects.toMatchObject({
      name: 'ValidationError',
      message: 'a chain needs its FULL backup first',
    });
    await expect(restore([['disk.0.qcow2', 'full']])).rejects.toMatchObject({
      name: 'ValidationError',
      message: 'backup file "disk.0.qcow2" is not an rbd backup file',
    });
  });
});
