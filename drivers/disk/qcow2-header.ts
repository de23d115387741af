/**
 * The qcow2 header of a file read back from a datastore, read by us before any qemu-img call:
 * such a file is untrusted input, and qemu follows what its header names (a backing file, an
 * external data file) with the runner's rights. {@link parseQcow2Header} is pure (bytes in,
 * facts out); {@link checkStoredImage} reads a file's first cluster and refuses what a restore
 * must never open.
 *
 * Layout (qemu's docs/interop/qcow2.txt, big-endian): magic `QFI\xfb` at 0, version at 4,
 * backing_file_offset (u64) at 8, backing_file_size (u32) at 16, cluster_bits at 20, size (u64)
 * at 24; version 3 adds incompatible_features (u64) at 72 (bit 2: external data file),
 * autoclear_features at 88 (bit 1: the data file is raw) and header_length at 100. Header
 * extensions (u32 type, u32 length, data padded to 8 bytes) follow the header up to the backing
 * file name or the end of the first cluster; type 0x44415441 names the external data file,
 * 0xe2792aca the backing file's format, 0 ends the list.
 */
import { open } from 'node:fs/promises';
import { UnsafeDiskImage } from './errors.ts';

const MAGIC = 0x514649fb;
const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_DATA_FILE = 0x44415441;
const INCOMPAT_DATA_FILE = 1n << 2n;
const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;
/** qemu's largest cluster: the header and its extensions always fit in the first one. */
const MAX_CLUSTER = 2 * 1024 * 1024;

/** What a qcow2 header says about the files it depends on. */
export interface Qcow2Header {
  version: 2 | 3;
  /** Guest-visible size in bytes. */
  virtualSize: number;
  clusterBits: number;
  /** Name of the backing file, when the header has one ('' when its name cannot be read). */
  backingFile?: string;
  /** Format named for the backing file (header extension). */
  backingFormat?: string;
  /** True when the image keeps its data in an external file (incompatible feature bit 2). */
  externalDataFile: boolean;
  /** The external data file's name (header extension), when given. */
  dataFile?: string;
  incompatibleFeatures: bigint;
}

/**
 * Parses the first bytes of a file (at least its first cluster when it has extensions) as a
 * qcow2 header. Throws UnsafeDiskImage when it is not one qemu would open as qcow2 2 or 3.
 */
export function parseQcow2Header(bytes: Uint8Array, what = 'image'): Qcow2Header {
  const bad = (why: string) => new UnsafeDiskImage(`${what}: ${why}`);
  if (bytes.length < 72) throw bad('too short for a qcow2 header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== MAGIC) throw bad('not a qcow2 file (no QFI magic)');
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw bad(`qcow2 version ${version} is not supported`);
  const backingOffset = view.getBigUint64(8);
  const backingSize = view.getUint32(16);
  const clusterBits = view.getUint32(20);
  if (clusterBits < 9 || clusterBits > 21) throw bad(`cluster_bits ${clusterBits} is out of range`);
  const header: Qcow2Header = {
    version,
    virtualSize: Number(view.getBigUint64(24)),
    clusterBits,
    externalDataFile: false,
    incompatibleFeatures: 0n,
  };
  let headerLength = 72;
  let autoclear = 0n;
  if (version === 3) {
    if (bytes.length < 104) throw bad('too short for a qcow2 version 3 header');
    header.incompatibleFeatures = view.getBigUint64(72);
    autoclear = view.getBigUint64(88);
    headerLength = view.getUint32(100);
    if (headerLength < 104 || headerLength % 8 !== 0) throw bad(`header_length ${headerLength} is invalid`);
  }
  header.externalDataFile =
    (header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n || (autoclear & AUTOCLEAR_DATA_FILE_RAW) !== 0n;
  const clusterEnd = Math.min(bytes.length, 2 ** clusterBits);
  const backingAt = Number(backingOffset);
  if (backingOffset !== 0n || backingSize !== 0) {
    const inRange = backingAt > 0 && backingAt + backingSize <= bytes.length;
    header.backingFile = inRange ? decode(bytes.subarray(backingAt, backingAt + backingSize)) : '';
  }
  // Extensions end where the backing file name starts, or with the first cluster.
  const extEnd = backingAt > headerLength && backingAt < clusterEnd ? backingAt : clusterEnd;
  for (let at = headerLength; at + 8 <= extEnd; ) {
    const type = view.getUint32(at);
    const length = view.getUint32(at + 4);
    if (type === EXT_END) break;
    const start = at + 8;
    if (start + length > extEnd) throw bad('a header extension runs past the first cluster');
    const data = bytes.subarray(start, start + length);
    if (type === EXT_DATA_FILE) {
      header.dataFile = decode(data);
      header.externalDataFile = true;
    } else if (type === EXT_BACKING_FORMAT) {
      header.backingFormat = decode(data);
    }
    at = start + Math.ceil(length / 8) * 8;
  }
  return header;
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/\0+$/, '');
}

/** Reads and parses the qcow2 header of `path` (its first cluster, at most 2 MiB). */
export async function readQcow2Header(path: string): Promise<Qcow2Header> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(MAX_CLUSTER);
    const { bytesRead } = await file.read(buffer, 0, MAX_CLUSTER, 0);
    return parseQcow2Header(buffer.subarray(0, bytesRead), path);
  } finally {
    await file.close();
  }
}

/**
 * Refuses a file read back from a datastore that qemu-img would make read or write another
 * file: any qcow2 with an external data file, and a qcow2 with a backing file unless it is an
 * `increment` (whose backing file, the live disk at backup time, is replaced by the chain's own
 * restored file with `qemu-img rebase -u` before anything opens it). Raw files name nothing
 * (qemu-img is always told `-f raw`, so their bytes are never probed). Answers the header of a
 * qcow2 file.
 */
export async function checkStoredImage(
  path: string,
  format: 'qcow2' | 'raw',
  role: 'full' | 'increment',
): Promise<Qcow2Header | undefined> {
  if (format === 'raw') return undefined;
  const header = await readQcow2Header(path);
  if (header.externalDataFile) {
    throw new UnsafeDiskImage(
      `${path}: refused, it keeps its data in an external file${header.dataFile ? ` (${header.dataFile})` : ''}; Lifeboat's backups never do`,
    );
  }
  if (role === 'full' && header.backingFile !== undefined) {
    throw new UnsafeDiskImage(
      `${path}: refused, a FULL backup file names a backing file${header.backingFile ? ` (${header.backingFile})` : ''}, which is never followed`,
    );
  }
  return header;
}
