/**
 * Applies an `rbd export-diff` stream (format "rbd diff v1") onto a raw disk file, so that a point
 * of an rbd chain is restored into a file with no Ceph cluster at all (on any host, as a qcow2
 * chain is). The alternative, `rbd import` plus `rbd import-diff` into a scratch image and
 * `rbd export` back, needs a cluster and a writable pool on the restoring host, and moves every
 * byte through Ceph twice.
 *
 * The format (ceph `src/tools/rbd/action/ExportDiff.cc`): the header `rbd diff v1\n`, then
 * records of one tag byte, little-endian integers:
 * `f` u32 length + from-snapshot name, `t` u32 length + to-snapshot name, `s` u64 image size,
 * `w` u64 offset + u64 length + data, `z` u64 offset + u64 length (zeroes), `e` end.
 *
 * A stored diff is untrusted: every record is bounds-checked (a write beyond the image's size, a
 * name longer than ceph allows, an unknown tag, a missing end or trailing bytes are refused with
 * UnsafeDiskImage) before or while it is applied; the output is a file we created.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { UnsafeDiskImage } from './errors.ts';

const HEADER = 'rbd diff v1\n';
const CHUNK = 1024 * 1024;
/** Ceph caps snapshot names well below this. */
const MAX_NAME = 4096;
/** Sizes beyond 2^53 cannot be file offsets here (and no rbd image is that large). */
const MAX_SIZE = Number.MAX_SAFE_INTEGER;

/** What one diff said about itself. */
export interface DiffInfo {
  /** The snapshot it starts from (`--from-snap`); null for a diff from the empty image. */
  from: string | null;
  /** The snapshot it leads to; null when exported from the image head. */
  to: string | null;
  /** The image size at `to`. */
  size: number;
  /** Bytes of data records (`w`) applied. */
  written: number;
}

/** Reads a file front to back in large chunks. */
class Reader {
  private buffer = Buffer.alloc(0);
  private offset = 0;
  private eof = false;
  constructor(
    private readonly handle: FileHandle,
    private readonly name: string,
  ) {}

  /** Exactly `n` bytes (n ≤ CHUNK); UnsafeDiskImage when the file ends first. */
  async take(n: number): Promise<Buffer> {
    while (this.buffer.length < n && !this.eof) {
      const chunk = Buffer.alloc(CHUNK);
      const { bytesRead } = await this.handle.read(chunk, 0, CHUNK, this.offset);
      this.offset += bytesRead;
      if (bytesRead === 0) this.eof = true;
      this.buffer = Buffer.concat([this.buffer, chunk.subarray(0, bytesRead)]);
    }
    if (this.buffer.length < n)
      throw new UnsafeDiskImage(`${this.name}: rbd diff ends in the middle of a record`);
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  async u8(): Promise<number> {
    return (await this.take(1))[0] as number;
  }

  async u32(): Promise<number> {
    return (await this.take(4)).readUInt32LE(0);
  }

  async u64(): Promise<number> {
    const value = (await this.take(8)).readBigUInt64LE(0);
    if (value > BigInt(MAX_SIZE))
      throw new UnsafeDiskImage(`${this.name}: rbd diff holds an impossible number`);
    return Number(value);
  }

  /** True when nothing is left. */
  async atEnd(): Promise<boolean> {
    if (this.buffer.length > 0) return false;
    const probe = Buffer.alloc(1);
    const { bytesRead } = await this.handle.read(probe, 0, 1, this.offset);
    return bytesRead === 0;
  }
}

/** Reads the `rbd diff v1` header; UnsafeDiskImage when the file is no rbd diff. */
async function readHeader(reader: Reader, name: string): Promise<void> {
  if ((await reader.take(HEADER.length)).toString('latin1') !== HEADER) {
    throw new UnsafeDiskImage(`${name} is not an rbd diff (format v1)`);
  }
}

/** The snapshot name of an `f` or `t` record (after its tag). */
async function readName(reader: Reader, name: string): Promise<string> {
  const length = await reader.u32();
  if (length > MAX_NAME) throw new UnsafeDiskImage(`${name}: snapshot name too long`);
  return (await reader.take(length)).toString('utf8');
}

/**
 * The snapshots the diff file `path` starts from and leads to, as its `f` and `t` records before
 * any other say (as `rbd export-diff` writes them), without reading further. `name` names it in
 * errors.
 */
export async function diffSnapshots(
  path: string,
  name: string,
): Promise<{ from: string | null; to: string | null }> {
  const input = await open(path, 'r');
  try {
    const reader = new Reader(input, name);
    await readHeader(reader, name);
    const out: { from: string | null; to: string | null } = { from: null, to: null };
    for (;;) {
      const tag = String.fromCharCode(await reader.u8());
      if (tag !== 'f' && tag !== 't') return out;
      out[tag === 'f' ? 'from' : 'to'] = await readName(reader, name);
    }
  } finally {
    await input.close();
  }
}

/**
 * Applies the diff file `diffPath` onto the raw file `rawPath` (which holds the image as of the
 * diff's from-snapshot; it is resized to the diff's size). `expectFrom`, when given, must be the
 * diff's from-snapshot (the chain's previous point). Answers what the diff said.
 */
export async function applyRbdDiff(
  diffPath: string,
  rawPath: string,
  options: { expectFrom?: string; signal?: AbortSignal; name?: string } = {},
): Promise<DiffInfo> {
  const name = options.name ?? diffPath;
  const input = await open(diffPath, 'r');
  const output = await open(rawPath, 'r+');
  try {
    const reader = new Reader(input, name);
    await readHeader(reader, name);
    const info: DiffInfo = { from: null, to: null, size: -1, written: 0 };
    const zeroes = Buffer.alloc(CHUNK);
    for (;;) {
      options.signal?.throwIfAborted();
      const tag = String.fromCharCode(await reader.u8());
      if (tag === 'e') break;
      if (tag === 'f' || tag === 't') {
        info[tag === 'f' ? 'from' : 'to'] = await readName(reader, name);
        continue;
      }
      if (tag === 's') {
        info.size = await reader.u64();
        if (options.expectFrom !== undefined && info.from !== options.expectFrom) {
          throw new UnsafeDiskImage(
            `${name} follows snapshot ${info.from ?? '(none)'}, not ${options.expectFrom}: the chain's files do not fit together`,
          );
        }
        await output.truncate(info.size);
        continue;
      }
      if (tag !== 'w' && tag !== 'z') throw new UnsafeDiskImage(`${name}: unknown rbd diff record '${tag}'`);
      const offset = await reader.u64();
      const length = await reader.u64();
      if (info.size < 0) throw new UnsafeDiskImage(`${name}: data before the image size`);
      if (offset + length > info.size) {
        throw new UnsafeDiskImage(`${name}: a record writes beyond the image's ${info.size} bytes`);
      }
      for (let done = 0; done < length; ) {
        const n = Math.min(CHUNK, length - done);
        const bytes = tag === 'w' ? await reader.take(n) : zeroes.subarray(0, n);
        await output.write(bytes, 0, n, offset + done);
        done += n;
      }
      if (tag === 'w') info.written += length;
    }
    if (info.size < 0) throw new UnsafeDiskImage(`${name}: rbd diff names no image size`);
    if (!(await reader.atEnd())) throw new UnsafeDiskImage(`${name}: bytes after the end of the rbd diff`);
    await output.sync();
    return info;
  } finally {
    await input.close();
    await output.close();
  }
}
