/**
 * Writes random (incompressible) bytes into an rbd image from outside any VM, through the rbd
 * CLI alone: a hand-made "rbd diff v1" stream (`w` records, no snapshots named) fed to
 * `rbd import-diff`. Tests and benchmarks use it where a guest write (a repeated byte, which
 * restic compresses and deduplicates to nothing) would not do.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '#drivers/exec.ts';

/** A range of an image: `length` bytes at `offset`. */
export interface Extent {
  offset: number;
  length: number;
}

/** The diff stream that writes `data[i]` at `extents[i].offset`. */
export function rbdDiff(extents: readonly Extent[], data: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from('rbd diff v1\n', 'latin1')];
  extents.forEach((extent, i) => {
    const head = Buffer.alloc(17);
    head.write('w', 0, 'latin1');
    head.writeBigUInt64LE(BigInt(extent.offset), 1);
    head.writeBigUInt64LE(BigInt(extent.length), 9);
    parts.push(head, data[i] as Buffer);
  });
  parts.push(Buffer.from('e', 'latin1'));
  return Buffer.concat(parts);
}

/**
 * Writes random bytes over `extents` of image `spec` (`pool/image`) of the cluster whose
 * ceph.conf is `conf`; answers the bytes written, extent by extent. The image must not be in
 * use by a running VM.
 */
export async function writeRandom(conf: string, spec: string, extents: readonly Extent[]): Promise<Buffer[]> {
  const data = extents.map((e) => randomBytes(e.length));
  const dir = await mkdtemp(join(tmpdir(), 'lb-rbd-write-'));
  try {
    const file = join(dir, 'write.rbdiff');
    await writeFile(file, rbdDiff(extents, data));
    await run(
      { file: 'rbd', args: ['import-diff', '--no-progress', file, spec], env: { CEPH_CONF: conf } },
      { timeoutMs: 600_000 },
    );
    return data;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
