/**
 * Restore of one point of an incremental chain (FULL + increments up to N) for file disks. The
 * files come from a datastore and are untrusted: every one is checked by our own header parser
 * before qemu-img opens it, and each increment's backing file is replaced, unopened, by the
 * chain's previous file.
 */
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Conflict, ValidationError } from '#core/errors.ts';
import { run } from '../exec.ts';
import type { RestoredDisk } from './driver.ts';
import { checkStoredImage } from './qcow2-header.ts';
import { imageInfo } from './tools.ts';

/** See `DiskDriver.restoreChain`. */
export async function restoreChain(
  files: readonly { path: string; format: 'qcow2' | 'raw' }[],
  toPath: string,
  options: { signal?: AbortSignal } = {},
): Promise<RestoredDisk> {
  const [full, ...increments] = files;
  if (!full) throw new ValidationError('A chain needs at least its FULL backup file');
  if (increments.some((f) => f.format !== 'qcow2')) throw new ValidationError('Increments are qcow2 files');
  if (await exists(toPath)) throw new Conflict(`Disk file ${toPath} already exists`);
  // Read back from a datastore: untrusted. Before any qemu-img call, refuse external data files
  // anywhere and a backing file on the FULL (see qcow2-header.ts).
  await checkStoredImage(full.path, full.format, 'full');
  for (const file of increments) await checkStoredImage(file.path, file.format, 'increment');
  await mkdir(dirname(toPath), { recursive: true });
  const info = await imageInfo(full.path, { format: full.format, signal: options.signal });
  let previous = full;
  for (const file of increments) {
    // Unsafe rebase: metadata only. An increment's unallocated clusters are "unchanged since the
    // previous point", which is exactly what reading through the previous file gives. `-u`
    // opens neither the old backing file (the live disk at backup time, or whatever a hostile
    // file names) nor the new one: after this, the chain holds only the chain's own files.
    await run(
      {
        file: 'qemu-img',
        args: ['rebase', '-u', '-f', 'qcow2', '-F', previous.format, '-b', resolve(previous.path), file.path],
      },
      { signal: options.signal },
    );
    previous = file;
  }
  return writeQcow2(previous, toPath, info['virtual-size'], options);
}

/**
 * Writes `source` as a checked qcow2 at `toPath`: converted (or, with `move`, a qcow2 moved
 * into place), `qemu-img check`ed under a `.partial` name, then renamed, so a failed restore
 * never leaves a file that looks finished.
 */
export async function writeQcow2(
  source: { path: string; format: 'qcow2' | 'raw' },
  toPath: string,
  virtualSize: number,
  options: { signal?: AbortSignal; move?: boolean } = {},
): Promise<RestoredDisk> {
  const partial = `${toPath}.partial`;
  try {
    if (options.move && source.format === 'qcow2') {
      await rename(source.path, partial).catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EXDEV') throw error;
        await copyFile(source.path, partial);
        await rm(source.path);
      });
    } else {
      await run(
        { file: 'qemu-img', args: ['convert', '-f', source.format, '-O', 'qcow2', source.path, partial] },
        { signal: options.signal },
      );
      if (options.move) await rm(source.path);
    }
    await run({ file: 'qemu-img', args: ['check', '-f', 'qcow2', partial] }, { signal: options.signal });
    await rename(partial, toPath);
  } finally {
    await rm(partial, { force: true });
  }
  return { path: toPath, format: 'qcow2', virtualSize, size: (await stat(toPath)).size };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
