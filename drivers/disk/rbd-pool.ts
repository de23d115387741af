/**
 * Restore of an rbd chain point into a new image of a Ceph pool: `rbd import` of the FULL (a
 * flattened qcow2 FULL converted to raw first), then `rbd snap create` of the first increment's
 * base snapshot and `rbd import-diff` of each increment, as a person would by hand (README).
 * Never over an existing image: checked first, and `rbd import` itself refuses an existing name.
 * The snapshots the diffs created are removed at the end: the new image is a plain image.
 *
 * The stored files are untrusted: names are checked, each diff's header must name the snapshot
 * the previous one led to, and `rbd import-diff` writes only into the image this made.
 */
import { rm } from 'node:fs/promises';
import { Conflict, ValidationError } from '#core/errors.ts';
import { run } from '../exec.ts';
import type { PointFile, StoredArtifact } from './driver.ts';
import { UnsafeDiskImage } from './errors.ts';
import { checkStoredImage } from './qcow2-header.ts';
import { imageSpec, isOurSnapshot, type Rbd, type RbdImage } from './rbd-cli.ts';
import { diffSnapshots } from './rbd-diff.ts';

/** The snapshots an `rbd export-diff` file starts from and leads to, each one of our names. */
async function snapshotsOf(file: PointFile): Promise<{ from: string | null; to: string | null }> {
  const head = await diffSnapshots(file.path, file.name);
  for (const snap of [head.from, head.to]) {
    if (snap !== null && !isOurSnapshot(snap))
      throw new UnsafeDiskImage(`${file.name}: rbd diff names an invalid snapshot`);
  }
  return head;
}

/** `target`'s spec, its names checked; Conflict when the image exists (a restore never writes over one). */
export async function assertNewImage(rbd: Rbd, target: RbdImage, signal?: AbortSignal): Promise<string> {
  const spec = imageSpec(target);
  if (await rbd.exists(target, { signal }))
    throw new Conflict(`rbd image ${spec} already exists: a restore never writes over an image`);
  return spec;
}

/**
 * Writes the point `files` (FULL first, then its increments, as `describe` reads their names)
 * into the new image `target` (refused again if it exists now); answers its size. The inputs are
 * consumed.
 */
export async function importPoint(
  rbd: Rbd,
  files: readonly (PointFile & StoredArtifact)[],
  target: RbdImage,
  options: { signal?: AbortSignal } = {},
): Promise<{ image: string; size: number }> {
  const spec = imageSpec(target);
  const signal = options.signal;
  const [full, ...increments] = files;
  if (!full || full.increment !== null) throw new ValidationError('a chain needs its FULL backup first');
  // Headers first: nothing is written for a chain whose diffs do not follow each other.
  const heads: { from: string; to: string }[] = [];
  for (const file of increments) {
    const head = await snapshotsOf(file);
    if (head.from === null || head.to === null)
      throw new UnsafeDiskImage(`${file.name} is not an increment between two snapshots`);
    const previous = heads.at(-1);
    if (previous && previous.to !== head.from)
      throw new UnsafeDiskImage(`${file.name} starts from ${head.from}, not from ${previous.to}`);
    heads.push({ from: head.from, to: head.to });
  }
  await assertNewImage(rbd, target, signal);
  let raw = full.path;
  if (full.format === 'qcow2') {
    await checkStoredImage(full.path, 'qcow2', 'full');
    raw = `${full.path}.raw`;
    await run(
      { file: 'qemu-img', args: ['convert', '-f', 'qcow2', '-O', 'raw', full.path, raw] },
      { signal },
    );
    await rm(full.path, { force: true });
  }
  // rbd refuses to import over an existing image: one made meanwhile is not ours to remove.
  await rbd.transfer(['import', '--no-progress', raw, spec], { signal });
  try {
    await rm(raw, { force: true });
    const first = heads[0];
    if (first) await rbd.run(['snap', 'create', '--no-progress', imageSpec(target, first.from)], { signal });
    for (const file of increments) {
      await rbd.transfer(['import-diff', '--no-progress', file.path, spec], { signal });
      await rm(file.path, { force: true });
    }
    await rbd.run(['snap', 'purge', '--no-progress', spec], { signal });
    const { size } = await rbd.json<{ size: number }>(['info', spec], { signal });
    return { image: spec, size };
  } catch (error) {
    await rbd.run(['snap', 'purge', '--no-progress', spec]).catch(() => {});
    await rbd.transfer(['rm', '--no-progress', spec]).catch(() => {});
    throw error;
  }
}
