/**
 * Disk images read back from a datastore are untrusted: the qcow2 header parser on real files
 * made with qemu-img, and restores (FULL alone, chains, the runner's mergePoints) that never
 * follow a backing file or an external data file such a file names.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import { parseQcow2Header, readQcow2Header } from '#drivers/disk/qcow2-header.ts';
import { run } from '#drivers/exec.ts';
import { mergePoints } from '#runner/tasks/points.ts';

const MiB = 1024 * 1024;
const driver = new Qcow2Driver();
let dir: string;

const qemuImg = (...args: string[]) => run({ file: 'qemu-img', args });
const qemuIo = (file: string, format: string, command: string) =>
  run({ file: 'qemu-io', args: ['-f', format, '-c', command, file] });

/** The guest-visible bytes of an image, read with qemu-img convert into a raw file. */
async function guestBytes(path: string): Promise<Buffer> {
  const raw = join(dir, `read-${Math.random().toString(16).slice(2)}.raw`);
  await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', path, raw);
  const bytes = await readFile(raw);
  await rm(raw);
  return bytes;
}

/** A raw file of `size` bytes filled with `byte`. */
async function filled(name: string, byte: number, size = MiB): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, Buffer.alloc(size, byte));
  return path;
}

/** An increment as a backup stores it: a qcow2 holding 64 KiB of 0xbb, naming `backing` as its backing file. */
async function increment(name: string, backing: string): Promise<string> {
  const path = join(dir, name);
  await qemuImg('create', '-q', '-f', 'qcow2', path, String(MiB));
  await qemuIo(path, 'qcow2', 'write -P 0xbb 0 64k');
  await qemuImg('rebase', '-u', '-f', 'qcow2', '-F', 'raw', '-b', backing, path);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-untrusted-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('qcow2 header parser (files made by qemu-img)', () => {
  it('reads version, size, backing file and its format', async () => {
    const plain = join(dir, 'plain.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', plain, '3M');
    expect(await readQcow2Header(plain)).toMatchObject({
      version: 3,
      virtualSize: 3 * MiB,
      clusterBits: 16,
      externalDataFile: false,
    });
    expect((await readQcow2Header(plain)).backingFile).toBeUndefined();

    const v2 = join(dir, 'v2.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=4096', v2, '1M');
    expect(await readQcow2Header(v2)).toMatchObject({ version: 2, clusterBits: 12, externalDataFile: false });

    const overlay = join(dir, 'overlay.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', '/etc/shadow', overlay, '1M');
    expect(await readQcow2Header(overlay)).toMatchObject({
      backingFile: '/etc/shadow',
      backingFormat: 'raw',
    });
  });

  it('finds an external data file, by feature bit and by its header extension', async () => {
    const withData = join(dir, 'with-data.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'data.raw')}`, withData, '1M');
    expect(await readQcow2Header(withData)).toMatchObject({
      externalDataFile: true,
      dataFile: join(dir, 'data.raw'),
    });
    const rawData = join(dir, 'with-raw-data.qcow2');
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      `data_file=${join(dir, 'data2.raw')},data_file_raw=on`,
      rawData,
      '1M',
    );
    expect(await readQcow2Header(rawData)).toMatchObject({ externalDataFile: true });
    // The feature bit alone (extension wiped) still counts.
    const bytes = await readFile(withData);
    const at = bytes.indexOf(Buffer.from([0x44, 0x41, 0x54, 0x41]));
    bytes.writeUInt32BE(0x12345678, at);
    const header = parseQcow2Header(bytes);
    expect(header.externalDataFile).toBe(true);
    expect(header.dataFile).toBeUndefined();
  });

  it('refuses what is not a qcow2 header', async () => {
    expect(() => parseQcow2Header(Buffer.alloc(4096))).toThrow(/not a qcow2 file/);
    expect(() => parseQcow2Header(Buffer.from('QFI'))).toThrow(/too short/);
    const plain = await readFile(join(dir, 'plain.qcow2'));
    const v9 = Buffer.from(plain);
    v9.writeUInt32BE(9, 4);
    expect(() => parseQcow2Header(v9)).toThrow(/version 9/);
    const long = Buffer.from(plain);
    // A header extension whose length runs past the first cluster.
    const extensions = long.readUInt32BE(100);
    long.writeUInt32BE(0x6803f857, extensions);
    long.writeUInt32BE(0x7fffffff, extensions + 4);
    expect(() => parseQcow2Header(long.subarray(0, 65536))).toThrow(/past the first cluster/);
  });
});

describe('restores never follow what a stored image names', () => {
  it('a chain whose increment names /etc/shadow as its backing file reads only the chain', async () => {
    const full = await filled('c1-disk.0.raw', 0xaa);
    const inc = await increment('c1-disk.0.inc1.qcow2', '/etc/shadow');
    const restored = await driver.restoreChain(
      [
        { path: full, format: 'raw' },
        { path: inc, format: 'qcow2' },
      ],
      join(dir, 'c1-out.qcow2'),
    );
    const bytes = await guestBytes(restored.path);
    const shadow = await readFile('/etc/shadow');
    expect(bytes.length).toBe(MiB);
    expect(bytes.subarray(0, 64 * 1024).every((b) => b === 0xbb)).toBe(true);
    expect(bytes.subarray(64 * 1024).every((b) => b === 0xaa)).toBe(true);
    expect(bytes.indexOf(shadow.subarray(0, 16))).toBe(-1);
    expect((await readQcow2Header(restored.path)).backingFile).toBeUndefined();
  });

  it('refuses a chain whose FULL names a backing file, before reading anything through it', async () => {
    const secret = await filled('c2-secret.raw', 0x5a);
    const full = join(dir, 'c2-disk.0.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', secret, full, String(MiB));
    const inc = await increment('c2-disk.0.inc1.qcow2', '/var/lib/libvirt/images/live.qcow2');
    const out = join(dir, 'c2-out.qcow2');
    await expect(
      driver.restoreChain(
        [
          { path: full, format: 'qcow2' },
          { path: inc, format: 'qcow2' },
        ],
        out,
      ),
    ).rejects.toMatchObject({
      name: 'UnsafeDiskImage',
      message: expect.stringContaining(`a FULL backup file names a backing file (${secret})`),
    });
    expect(existsSync(out)).toBe(false);
    // A FULL alone too.
    await expect(driver.restoreDisk(full, 'qcow2', out)).rejects.toMatchObject({ name: 'UnsafeDiskImage' });
    expect(existsSync(out)).toBe(false);
  });

  it('refuses an external data file in a FULL or an increment, before qemu-img opens it', async () => {
    const secret = await filled('c3-secret.raw', 0x5a);
    const withData = join(dir, 'c3-disk.0.qcow2');
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      `data_file=${join(dir, 'c3-data.raw')}`,
      withData,
      '1M',
    );
    // Point the data file at the "secret": what a hostile backup would name.
    await qemuImg('amend', '-f', 'qcow2', '-o', `data_file=${secret}`, withData);
    const out = join(dir, 'c3-out.qcow2');
    await expect(driver.restoreDisk(withData, 'qcow2', out)).rejects.toMatchObject({
      name: 'UnsafeDiskImage',
      message: expect.stringContaining(`it keeps its data in an external file (${secret})`),
    });
    const full = await filled('c3-full.raw', 0xaa);
    await expect(
      driver.restoreChain(
        [
          { path: full, format: 'raw' },
          { path: withData, format: 'qcow2' },
        ],
        out,
      ),
    ).rejects.toMatchObject({ name: 'UnsafeDiskImage' });
    expect(existsSync(out)).toBe(false);
    // The secret is untouched and the file still names it (no qemu-img rebase ran on it).
    expect((await readFile(secret)).every((b) => b === 0x5a)).toBe(true);
    expect(await readQcow2Header(withData)).toMatchObject({ dataFile: secret });
  });

  it('restorePoint (restore, in-place restore and flatten) refuses them before any qemu-img call', async () => {
    const driver = new Qcow2Driver();
    const signal = new AbortController().signal;
    const hostileFull = join(dir, 'c2-disk.0.qcow2');
    const withData = join(dir, 'c3-disk.0.qcow2');
    const full = join(dir, 'c3-full.raw');
    const out = join(dir, 'm.qcow2');
    await expect(
      mergePoints(driver, [new Map([[0, { path: hostileFull, name: 'disk.0.qcow2' }]])], 0, out, signal),
    ).rejects.toMatchObject({ name: 'UnsafeDiskImage' });
    await expect(
      mergePoints(
        driver,
        [
          new Map([[0, { path: full, name: 'disk.0.raw' }]]),
          new Map([[0, { path: withData, name: 'disk.0.inc1.qcow2' }]]),
        ],
        0,
        out,
        signal,
      ),
    ).rejects.toMatchObject({ name: 'UnsafeDiskImage' });
    expect(existsSync(out)).toBe(false);
    expect(await readQcow2Header(withData)).toMatchObject({ dataFile: expect.any(String) });
  });
});
