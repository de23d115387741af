/**
 * In-place restore of file disks (the qcow2 driver's `prepareInPlace`): a backup written over a
 * powered-off VM's own disk files. Each restored disk
 * is first written beside its file (`<file>.lifeboat-restore`, same folder so the swap is a
 * rename), in the disk's own format; only when every disk is ready, and the domain is still shut
 * off, is each old file renamed to `<file>.lifeboat-safety` and the new one put in its place.
 * When every disk is swapped the safety copies are removed; when anything fails the safety
 * copies are put back. A record in the task's work folder (`in-place.json`) names the files, so
 * {@link undoInPlace} (part of the driver's reconcile) can put a crashed runner's safety copies
 * back. Which files those are comes from libvirt on this host ({@link libvirtDisks}), never from
 * the task.
 */
import { chmod, chown, lstat, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Conflict, ValidationError } from '#core/errors.ts';
import { run } from '../exec.ts';
import type { InPlaceRestore, RestoredDisk } from './driver.ts';
import { readDomainInventory } from './inventory.ts';
import { commitTrackingOverlays } from './snapshot-mode.ts';
import { domainState, type ToolOptions, virsh } from './tools.ts';

/** One disk of the VM restored in place. */
export interface InPlaceDisk {
  id: number;
  /** The VM's disk file. */
  source: string;
  format: 'qcow2' | 'raw';
}

export const SAFETY_SUFFIX = '.lifeboat-safety';
const INCOMING_SUFFIX = '.lifeboat-restore';
const RECORD = 'in-place.json';

/** Where the restored file of `disk` is written before the swap. */
export const incomingPath = (source: string) => `${source}${INCOMING_SUFFIX}`;
/** Where the restored qcow2 of `disk` is written first (beside it: the same file system). */
export const scratchPath = (source: string) => `${source}${INCOMING_SUFFIX}.qcow2`;
/** Where the old file of `disk` is kept until the restore has succeeded. */
export const safetyPath = (source: string) => `${source}${SAFETY_SUFFIX}`;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The files of disks `ids` of `domain` as libvirt on this host has them, never as a task says:
 * the domain's persistent definition, numbered as the inventory numbers disks (a tracking
 * overlay counted as its base file). A disk id the domain does not have, a disk that is not a
 * qcow2 or raw file, or a source that is not a regular file (a symlink, a device) is refused
 * with a ValidationError before anything is downloaded or moved.
 */
export async function libvirtDisks(
  domain: string,
  ids: readonly number[],
  options: ToolOptions = {},
): Promise<InPlaceDisk[]> {
  const inventory = await readDomainInventory(domain, options);
  const disks: InPlaceDisk[] = [];
  for (const id of ids) {
    const disk = inventory.disks.find((d) => d.id === id);
    if (!disk) {
      throw new ValidationError(
        `in-place restore: domain "${domain}" has no disk ${id} (it has ${inventory.disks.length ? inventory.disks.map((d) => `${d.id} ${d.target}`).join(', ') : 'none'})`,
      );
    }
    if (disk.format !== 'qcow2' && disk.format !== 'raw') {
      throw new ValidationError(
        `in-place restore: disk ${id} (${disk.target}) of "${domain}" is not a file disk`,
      );
    }
    const info = await lstat(disk.source).catch(() => undefined);
    if (!info?.isFile()) {
      throw new ValidationError(
        `in-place restore: disk ${id} (${disk.target}) of "${domain}" is ${disk.source}, which is ${info ? 'not a regular file' : 'missing'}`,
      );
    }
    disks.push({ id, source: disk.source, format: disk.format });
  }
  return disks;
}

/** Throws Conflict unless the domain is defined and shut off. */
export async function assertShutOff(domain: string, options: ToolOptions = {}): Promise<void> {
  const state = await domainState(domain, options);
  if (state === null) throw new Conflict(`domain "${domain}" does not exist on this host`);
  if (state !== 'shut off') {
    throw new Conflict(`domain "${domain}" is ${state}: an in-place restore needs it shut off`);
  }
}

/** Checks before any download: file disks that exist, and no leftover of an earlier attempt. */
export async function checkInPlace(domain: string, disks: readonly InPlaceDisk[], options: ToolOptions = {}) {
  await assertShutOff(domain, options);
  for (const disk of disks) {
    if (!(await exists(disk.source)))
      throw new ValidationError(`disk ${disk.id}: ${disk.source} does not exist`);
    if (await exists(safetyPath(disk.source))) {
      throw new Conflict(
        `disk ${disk.id}: ${safetyPath(disk.source)} is left from an earlier in-place restore: check it and remove it first`,
      );
    }
    // Leftovers of an attempt that failed before its swap hold nothing of value.
    await rm(incomingPath(disk.source), { force: true });
    await rm(scratchPath(disk.source), { force: true });
  }
}

/**
 * Converts a restored qcow2 file into the disk's own format at its incoming path (a move when
 * it is qcow2 already). Answers the incoming path.
 */
export async function stageDisk(
  restored: string,
  disk: InPlaceDisk,
  options: { signal?: AbortSignal } = {},
): Promise<string> {
  const incoming = incomingPath(disk.source);
  if (disk.format === 'qcow2') {
    await rename(restored, incoming);
  } else {
    await run(
      { file: 'qemu-img', args: ['convert', '-q', '-f', 'qcow2', '-O', 'raw', restored, incoming] },
      { signal: options.signal },
    );
    await rm(restored, { force: true });
  }
  return incoming;
}

/**
 * Swaps every staged disk in (old file -> safety copy, incoming -> file, owner and mode kept),
 * then removes the safety copies and the domain's checkpoint metadata (the old bitmaps are gone
 * with the old files). Any failure puts every old file back and rethrows.
 */
export async function swapDisks(
  domain: string,
  disks: readonly InPlaceDisk[],
  workDir: string,
  options: ToolOptions = {},
): Promise<void> {
  await assertShutOff(domain, options);
  await writeFile(join(workDir, RECORD), JSON.stringify({ disks: disks.map((d) => d.source) }), {
    mode: 0o600,
  });
  const swapped: string[] = [];
  try {
    for (const disk of disks) {
      const old = await stat(disk.source);
      const incoming = incomingPath(disk.source);
      await chown(incoming, old.uid, old.gid);
      await chmod(incoming, old.mode & 0o7777);
      await rename(disk.source, safetyPath(disk.source));
      swapped.push(disk.source);
      await rename(incoming, disk.source);
    }
  } catch (error) {
    await putBack(swapped);
    await rm(join(workDir, RECORD), { force: true });
    throw error;
  }
  for (const source of swapped) await rm(safetyPath(source), { force: true });
  await rm(join(workDir, RECORD), { force: true });
  await dropCheckpoints(domain, options);
}

/** Puts the safety copies of `sources` back in place (the restored file, if any, is dropped). */
async function putBack(sources: readonly string[]): Promise<string[]> {
  const done: string[] = [];
  for (const source of sources) {
    if (!(await exists(safetyPath(source)))) continue;
    await rename(safetyPath(source), source);
    done.push(`put back ${source}`);
  }
  for (const source of sources) {
    await rm(incomingPath(source), { force: true });
    await rm(scratchPath(source), { force: true });
  }
  return done;
}

/** Undoes an in-place restore a crash interrupted (from the record in `workDir`). Idempotent. */
export async function undoInPlace(workDir: string): Promise<string[]> {
  const text = await readFile(join(workDir, RECORD), 'utf8').catch(() => undefined);
  if (!text) return [];
  const { disks } = JSON.parse(text) as { disks: string[] };
  const done = await putBack(disks);
  await rm(join(workDir, RECORD), { force: true });
  return done;
}

/** Removes the domain's checkpoint metadata (their bitmaps lived in the replaced files). */
async function dropCheckpoints(domain: string, options: ToolOptions): Promise<void> {
  const names = (await virsh(['checkpoint-list', domain, '--name'], options).catch(() => ''))
    .split('\n')
    .map((n) => n.trim())
    .filter(Boolean);
  for (const name of names)
    await virsh(['checkpoint-delete', domain, name, '--metadata'], options).catch(() => {});
}

/**
 * See `DiskDriver.prepareInPlace`: the domain's file disks `ids` from libvirt, checked (shut
 * off, regular files, no leftover safety copy) before anything is downloaded.
 */
export async function prepareInPlace(
  domain: string,
  ids: readonly number[],
  workDir: string,
  options: ToolOptions = {},
): Promise<InPlaceRestore> {
  const disks = await libvirtDisks(domain, ids, options);
  await checkInPlace(domain, disks, options);
  const staged = new Set<string>();
  const discard = async () => {
    for (const path of staged) await rm(path, { force: true });
    staged.clear();
  };
  return {
    disks,
    async stage(id, write): Promise<RestoredDisk> {
      const disk = disks.find((d) => d.id === id);
      if (!disk) throw new ValidationError(`in-place restore: disk ${id} was not prepared`);
      const scratch = scratchPath(disk.source);
      staged.add(scratch);
      const out = await write(scratch);
      staged.add(await stageDisk(out.path, disk, options));
      return { ...out, path: disk.source };
    },
    async commit(): Promise<string[]> {
      // A VM backed up with INCREMENT_MODE=SNAPSHOT runs on tracking overlays over these files:
      // commit them down first, or the overlays would sit over the restored content.
      const done = await commitTrackingOverlays(
        domain,
        disks.map((d) => d.source),
        options,
      );
      await swapDisks(domain, disks, workDir, options);
      staged.clear();
      return done;
    },
    discard,
  };
}
