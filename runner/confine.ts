/**
 * Where a restore folder or a downloaded file goes on this host, and how it is written there.
 * The runner runs as root and the path comes from a task a user asked for, so it is untrusted:
 *
 * - A relative path goes under the first restore root; an absolute one must be under one of the
 *   roots, unless the task is not confined (an admin asked: any absolute folder).
 * - For everyone, admins included: no `..` component, no control character, no leading `-`; no
 *   symbolic link anywhere on the path (every component is lstat'ed from `/`; only the roots'
 *   own real paths are resolved first, so an operator may give a root through a symlink); no
 *   folder on the way that other users can change (writable by group or others, unless it is a
 *   root-owned sticky folder such as `/tmp`), since they could swap a component for a symlink
 *   between the check and the write; never over an existing file.
 * - Files are created exclusively (a unique partial name made with O_EXCL|O_NOFOLLOW, or left to
 *   a tool, then `link()`ed to the final name, which fails when that exists) and end up 0600;
 *   folders created are 0711 where QEMU must reach a restored disk, 0700 otherwise.
 *
 * Failures are typed and name the path and the rule: ValidationError (the text of the path),
 * Forbidden (outside the roots, a symlink, a folder others can change), Conflict (the file exists,
 * a component is not a folder).
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, realpath, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import { Conflict, Forbidden, ValidationError } from '#core/errors.ts';

/** Which roots apply to a task's path. */
export interface Confinement {
  /** The host's restore roots, absolute (the runner's `LIFEBOAT_RESTORE_ROOTS`). */
  roots: readonly string[];
  /** True: the path must be under a root (a user asked); false: an admin asked. */
  confined: boolean;
}

/** A checked place on the host. */
export interface Place {
  /** The absolute path, through the roots' real paths. */
  path: string;
  /** The folders of the place that do not exist yet, outermost first (created by {@link createFolders}). */
  missing: string[];
  /** How the path was named in the task, for messages. */
  label: string;
}

/** Mode of folders a restore creates (QEMU, as libvirt-qemu, must reach the disks below). */
export const RESTORE_FOLDER_MODE = 0o711;
/** Mode of folders a download creates. */
export const PRIVATE_FOLDER_MODE = 0o700;
/** Mode of every file written. */
export const FILE_MODE = 0o600;

/**
 * The restore folder `path` names: checked as above, existing or not (create it with
 * {@link createFolders}). An existing one must be a real folder that only its owner can change.
 */
export async function resolveFolder(path: string, confinement: Confinement): Promise<Place> {
  const label = `restore folder "${path}"`;
  const absolute = await placeOf(path, confinement, label);
  return { path: absolute, missing: await walk(absolute, label), label };
}

/**
 * The file `path` names (a download): its folder checked as above (created later by
 * {@link createFolders}), the file itself must not exist. `path` of the answer is the file.
 */
export async function resolveFile(path: string, confinement: Confinement): Promise<Place> {
  const label = `download path "${path}"`;
  const last = path.split('/').at(-1);
  if (last === '' || last === '.') throw new ValidationError(`${label} must name a file, not a folder`);
  const absolute = await placeOf(path, confinement, label);
  const missing = await walk(dirname(absolute), label);
  if (missing.length === 0) await assertAbsent(absolute, label);
  return { path: absolute, missing, label };
}

/** Creates the missing folders of `place` with `mode` (umask aside), each checked once made. */
export async function createFolders(place: Place, mode: number): Promise<void> {
  for (const folder of place.missing) {
    try {
      await mkdir(folder, { mode });
      // Exactly `mode`: a umask of 077 would otherwise keep QEMU out of a restore folder.
      await chmod(folder, mode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // Made by us or by someone in between: either way it must pass the same checks.
    checkFolder(folder, await lstat(folder), place.label);
  }
  place.missing = [];
}

/** Conflict when anything (a file, a folder, a dangling symlink) is at `path`. */
export async function assertAbsent(path: string, label = `"${path}"`): Promise<void> {
  const found = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (found) throw new Conflict(`${label}: ${path} already exists; restores and downloads never overwrite`);
}

/**
 * A fresh name beside `finalPath` for writing it before it is linked into place (hidden, random,
 * `.partial`): what a tool that creates its output itself (qemu-img) is handed. Not created.
 */
export function partialName(finalPath: string): string {
  const name = basename(finalPath).slice(0, 180);
  return join(dirname(finalPath), `.${name}.${randomBytes(6).toString('hex')}.partial`);
}

/** Creates an empty partial file for `finalPath` exclusively (O_EXCL|O_NOFOLLOW, 0600); answers its path. */
export async function createPartial(finalPath: string): Promise<string> {
  const partial = partialName(finalPath);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await open(partial, flags, FILE_MODE);
  await handle.close();
  return partial;
}

/**
 * Moves a written partial to `finalPath` without ever replacing anything: the partial must still
 * be a regular file (a tool may have renamed its own output onto it; a symlink is refused), is
 * made 0600, then hard-linked to the final name (EEXIST: Conflict) and unlinked.
 */
export async function commitFile(partial: string, finalPath: string): Promise<void> {
  const handle = await open(partial, constants.O_RDONLY | constants.O_NOFOLLOW).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ELOOP') throw new Forbidden(`${partial} became a symbolic link: not written`);
      throw error;
    },
  );
  try {
    if (!(await handle.stat()).isFile()) throw new Forbidden(`${partial} is not a regular file: not written`);
    await handle.chmod(FILE_MODE);
  } finally {
    await handle.close();
  }
  try {
    await link(partial, finalPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new Conflict(`${finalPath} already exists; restores and downloads never overwrite`);
    }
    throw error;
  }
  await unlink(partial);
}

/** Writes `data` as a new 0600 file at `finalPath` (never over an existing one). */
export async function writeNewFile(finalPath: string, data: string | Uint8Array): Promise<void> {
  const partial = await createPartial(finalPath);
  try {
    const handle = await open(partial, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await commitFile(partial, finalPath);
  } finally {
    await unlink(partial).catch(() => {});
  }
}

/** Refuses what no path may hold, whoever asks; the task schema says the same. */
export function checkPathText(path: string, label: string): void {
  if (path.length === 0) throw new ValidationError(`${label} is empty`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\x00-\x1f\x7f]/.test(path)) throw new ValidationError(`${label} must not hold control characters`);
  if (path.startsWith('-')) throw new ValidationError(`${label} must not start with -`);
  if (path.split('/').includes('..')) throw new ValidationError(`${label} must not contain ..`);
}

/**
 * The absolute path the task's `path` names: relative ones under the first root; a path under a
 * root as configured is rewritten through the root's real path. Forbidden when confined and
 * under no root.
 */
async function placeOf(path: string, { roots, confined }: Confinement, label: string): Promise<string> {
  checkPathText(path, label);
  const [first] = roots;
  if (!isAbsolute(path) && !first)
    throw new ValidationError(`${label} is relative, and this host has no restore root`);
  const absolute = normalize(isAbsolute(path) ? path : join(first as string, path)).replace(/(.)\/+$/, '$1');
  for (const root of roots) {
    const rest = below(absolute, root);
    if (rest !== null) return join(await realRoot(root, label), rest);
  }
  // Under a root's real path, named directly.
  for (const root of roots) {
    const real = await realpath(root).catch(() => null);
    if (real && below(absolute, real) !== null) return absolute;
  }
  if (confined) {
    throw new Forbidden(
      `${label} is outside this host's restore roots (${roots.join(':')}); only an admin may name another folder`,
    );
  }
  return absolute;
}

/** What follows `root` in `path` (`''` for the root itself), or null when `path` is not under it. */
function below(path: string, root: string): string | null {
  if (path === root) return '';
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : null;
}

/** A root's real path, the root created (0711) when missing: the operator named it. */
async function realRoot(root: string, label: string): Promise<string> {
  try {
    const first = await mkdir(root, { recursive: true, mode: RESTORE_FOLDER_MODE });
    // The folders just made get exactly 0711 whatever the umask: QEMU reaches restored disks.
    if (first) {
      for (let dir = root; ; dir = dirname(dir)) {
        await chmod(dir, RESTORE_FOLDER_MODE);
        if (dir === first || dir === dirname(dir)) break;
      }
    }
    return await realpath(root);
  } catch (error) {
    throw new Conflict(`${label}: the restore root ${root} cannot be used (${(error as Error).message})`);
  }
}

/**
 * Checks every existing component of `absolute` from `/` down, answers those that do not exist
 * yet (outermost first).
 */
async function walk(absolute: string, label: string): Promise<string[]> {
  const parts = absolute.split('/').filter(Boolean);
  let current = '/';
  checkFolder(current, await lstat(current), label);
  for (const [index, part] of parts.entries()) {
    current = join(current, part);
    const found = await lstat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (!found) {
      const missing = [current];
      for (const next of parts.slice(index + 1)) missing.push(join(missing.at(-1) as string, next));
      return missing;
    }
    checkFolder(current, found, label);
  }
  return [];
}

/** A folder on the way: a real directory that no other user may change. */
function checkFolder(path: string, stats: Stats, label: string): void {
  if (stats.isSymbolicLink()) {
    throw new Forbidden(`${label}: ${path} is a symbolic link; restores and downloads never go through one`);
  }
  if (!stats.isDirectory()) throw new Conflict(`${label}: ${path} is not a folder`);
  const othersWrite = (stats.mode & 0o022) !== 0;
  const rootSticky = stats.uid === 0 && (stats.mode & 0o1000) !== 0;
  if (othersWrite && !rootSticky) {
    throw new Forbidden(
      `${label}: ${path} is writable by other users (mode ${(stats.mode & 0o7777).toString(8)}); restores and downloads go only through folders that only their owner can change, or root's sticky ones like /tmp`,
    );
  }
}
