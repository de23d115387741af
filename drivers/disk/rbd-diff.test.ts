import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRbdDiff, diffSnapshots } from './rbd-diff.ts';

/** Builds an "rbd diff v1" stream record by record (little-endian, as ceph writes it). */
class Diff {
  private parts: Buffer[] = [Buffer.from('rbd diff v1\n', 'latin1')];
  name(tag: 'f' | 't', snap: string) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(Buffer.byteLength(snap));
    this.parts.push(Buffer.from(tag), len, Buffer.from(snap));
    return this;
  }
  size(bytes: number | bigint) {
    return this.tagged('s', [bytes]);
  }
  write(offset: number, data: Buffer) {
    this.tagged('w', [offset, data.length]);
    this.parts.push(data);
    return this;
  }
  zero(offset: number, length: number) {
    return this.tagged('z', [offset, length]);
  }
  end() {
    this.parts.push(Buffer.from('e'));
    return this;
  }
  raw(bytes: Buffer) {
    this.parts.push(bytes);
    return this;
  }
  bytes() {
    return Buffer.concat(this.parts);
  }
  private tagged(tag: string, numbers: (number | bigint)[]) {
    const body = Buffer.alloc(8 * numbers.length);
    for (const [i, n] of numbers.entries()) body.writeBigUInt64LE(BigInt(n), 8 * i);
    this.parts.push(Buffer.from(tag), body);
    return this;
  }
}

describe('applyRbdDiff', () => {
  let dir: string;
  let n = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-rbd-diff-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A raw file of `base`, the diff applied; the file's bytes (or the error). */
  async function apply(base: Buffer, diff: Diff, expectFrom?: string) {
    const raw = join(dir, `raw-${++n}`);
    const path = join(dir, `diff-${n}`);
    await writeFile(raw, base);
    await writeFile(path, diff.bytes());
    const info = await applyRbdDiff(path, raw, expectFrom === undefined ? {} : { expectFrom });
    return { info, bytes: await readFile(raw) };
  }

  it('writes data, zeroes ranges and resizes the image as the records say', async () => {
    const base = Buffer.alloc(64, 0x11);
    const diff = new Diff()
      .name('f', 'lifeboat-a')
      .name('t', 'lifeboat-b')
      .size(80)
      .write(8, Buffer.alloc(8, 0x22))
      .zero(16, 8)
      .write(70, Buffer.alloc(10, 0x33))
      .end();
    const { info, bytes } = await apply(base, diff, 'lifeboat-a');
    expect(info).toEqual({ from: 'lifeboat-a', to: 'lifeboat-b', size: 80, written: 18 });
    const expected = Buffer.concat([
      Buffer.alloc(8, 0x11),
      Buffer.alloc(8, 0x22),
      Buffer.alloc(8, 0),
      Buffer.alloc(40, 0x11),
      Buffer.alloc(6, 0),
      Buffer.alloc(10, 0x33),
    ]);
    expect(bytes.equals(expected)).toBe(true);
  });

  it('shrinks the image when the size record says so', async () => {
    const { bytes } = await apply(Buffer.alloc(64, 1), new Diff().name('f', 'a').size(32).end());
    expect(bytes.length).toBe(32);
  });

  it.each([
    [
      'a write beyond the image size',
      new Diff().name('f', 'a').size(16).write(10, Buffer.alloc(8)).end(),
      /beyond the image/,
    ],
    [
      'a zero range beyond the image size',
      new Diff()
        .name('f', 'a')
        .size(16)
        .zero(8, 2 ** 40)
        .end(),
      /beyond the image/,
    ],
    [
      'data before the size',
      new Diff().name('f', 'a').write(0, Buffer.alloc(4)).size(16).end(),
      /before the image size/,
    ],
    [
      'an unknown record',
      new Diff().name('f', 'a').size(16).raw(Buffer.from('x')).end(),
      /unknown rbd diff record/,
    ],
    [
      'a stream cut short',
      new Diff().name('f', 'a').size(16).write(0, Buffer.alloc(8)).raw(Buffer.alloc(0)),
      /middle of a record/,
    ],
    [
      'bytes after the end',
      new Diff().name('f', 'a').size(16).end().raw(Buffer.from('junk')),
      /after the end/,
    ],
    ['no size at all', new Diff().name('f', 'a').end(), /no image size/],
    [
      'an impossible number',
      new Diff()
        .name('f', 'a')
        .size(2n ** 63n)
        .end(),
      /impossible number/,
    ],
  ])('refuses %s (UnsafeDiskImage)', async (_what, diff, message) => {
    await expect(apply(Buffer.alloc(16), diff)).rejects.toMatchObject({ name: 'UnsafeDiskImage', message });
  });

  it('refuses a diff that does not follow the previous point', async () => {
    await expect(
      apply(Buffer.alloc(16), new Diff().name('f', 'lifeboat-x').size(16).end(), 'lifeboat-y'),
    ).rejects.toMatchObject({
      name: 'UnsafeDiskImage',
      message: expect.stringContaining('follows snapshot lifeboat-x, not lifeboat-y'),
    });
  });

  it('refuses a file that is not an rbd diff', async () => {
    const raw = join(dir, 'raw-x');
    await writeFile(raw, Buffer.alloc(16));
    await writeFile(join(dir, 'not-a-diff'), 'QFI\xfb not a diff at all');
    await expect(applyRbdDiff(join(dir, 'not-a-diff'), raw)).rejects.toMatchObject({
      name: 'UnsafeDiskImage',
    });
  });
});

describe('diffSnapshots', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-rbd-head-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function head(diff: Diff | Buffer) {
    const path = join(dir, 'diff');
    await writeFile(path, Buffer.isBuffer(diff) ? diff : diff.bytes());
    return diffSnapshots(path, 'disk.0.inc1.rbdiff');
  }

  it('reads the snapshots a diff starts from and leads to, and nothing after them', async () => {
    // The data after the names is never read: a cut one is no error here (applying it is).
    const cut = new Diff().name('f', 'lifeboat-a').name('t', 'lifeboat-b').size(80).raw(Buffer.from('w'));
    expect(await head(cut)).toEqual({ from: 'lifeboat-a', to: 'lifeboat-b' });
    expect(await head(new Diff().name('t', 'lifeboat-b').size(8).end())).toEqual({
      from: null,
      to: 'lifeboat-b',
    });
  });

  it('refuses a file that is no rbd diff, a name longer than ceph allows, and a name cut short', async () => {
    await expect(head(Buffer.from('QFI\xfb not a diff at all'))).rejects.toMatchObject({
      name: 'UnsafeDiskImage',
      message: 'disk.0.inc1.rbdiff is not an rbd diff (format v1)',
    });
    await expect(head(new Diff().name('f', 'x'.repeat(5000)).end())).rejects.toMatchObject({
      name: 'UnsafeDiskImage',
      message: 'disk.0.inc1.rbdiff: snapshot name too long',
    });
    const cut = new Diff().name('f', 'lifeboat-a').bytes();
    await expect(head(cut.subarray(0, cut.length - 3))).rejects.toMatchObject({
      name: 'UnsafeDiskImage',
      message: 'disk.0.inc1.rbdiff: rbd diff ends in the middle of a record',
    });
  });
});
