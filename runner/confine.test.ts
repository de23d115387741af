/**
 * Confined writes on a real temp folder: where a restore folder or a download lands, what is
 * refused (and that nothing was written then), and the modes of what is made.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  commitFile,
  createFolders,
  createPartial,
  PRIVATE_FOLDER_MODE,
  partialName,
  RESTORE_FOLDER_MODE,
  resolveFile,
  resolveFolder,
  writeNewFile,
} from './confine.ts';

let base: string;
let roots: string[];
const user = () => ({ roots, confined: true });
const admin = () => ({ roots, confined: false });
const mode = async (path: string) => (await lstat(path)).mode & 0o7777;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'lifeboat-confine-'));
  roots = [join(base, 'restores'), join(base, 'second')];
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('where a path goes', () => {
  it('takes a relative path under the first root, creating the root and the folders 0711', async () => {
    const old = process.umask(0o077);
    try {
      const place = await resolveFolder('vm-1/disks', user());
      expect(place.path).toBe(join(base, 'restores', 'vm-1', 'disks'));
      await createFolders(place, RESTORE_FOLDER_MODE);
    } finally {
      process.umask(old);
    }
    // QEMU must reach the restored disks even with a strict umask.
    expect(await mode(join(base, 'restores'))).toBe(0o711);
    expect(await mode(join(base, 'restores', 'vm-1'))).toBe(0o711);
    expect(await mode(join(base, 'restores', 'vm-1', 'disks'))).toBe(0o711);
  });

  it('accepts a user path under any root, and a root given through a symlink', async () => {
    await mkdir(join(base, 'real-second'));
    await symlink(join(base, 'real-second'), join(base, 'second'));
    expect((await resolveFolder(join(base, 'second', 'x'), user())).path).toBe(
      join(base, 'real-second', 'x'),
    );
    // The real path of a root, named directly, is under it too.
    expect((await resolveFolder(join(base, 'real-second', 'y'), user())).path).toBe(
      join(base, 'real-second', 'y'),
    );
  });

  it('refuses a user path outside the roots, naming the path and the roots', async () => {
    await expect(resolveFolder(join(base, 'elsewhere'), user())).rejects.toMatchObject({
      name: 'Forbidden',
      message: expect.stringMatching(/restore folder ".*elsewhere" is outside this host's restore roots/),
    });
    await expect(resolveFile('/root/.ssh/authorized_keys', user())).rejects.toMatchObject({
      name: 'Forbidden',
      message: expect.stringContaining(`"/root/.ssh/authorized_keys" is outside this host's restore roots`),
    });
    // A root is a folder, not a prefix of names.
    await expect(resolveFolder(`${roots[0]}-evil/x`, user())).rejects.toMatchObject({ name: 'Forbidden' });
  });

  it('lets an admin name a folder outside the roots', async () => {
    const place = await resolveFile(join(base, 'admin', 'disk.raw'), admin());
    expect(place.path).toBe(join(base, 'admin', 'disk.raw'));
    await createFolders(place, PRIVATE_FOLDER_MODE);
    expect(await mode(join(base, 'admin'))).toBe(0o700);
  });

  it('refuses .., control characters and a leading - for everyone', async () => {
    for (const confinement of [user(), admin()]) {
      await expect(resolveFolder(`${roots[0]}/../etc`, confinement)).rejects.toMatchObject({
        name: 'ValidationError',
        message: expect.stringMatching(/must not contain \.\.$/),
      });
      await expect(resolveFile('a/b\nc', confinement)).rejects.toThrow(/must not hold control characters/);
      await expect(resolveFile('a/b\0c', confinement)).rejects.toThrow(/must not hold control characters/);
      await expect(resolveFolder('-rf', confinement)).rejects.toThrow(/must not start with -/);
      await expect(resolveFile(`${roots[0]}/dir/`, confinement)).rejects.toThrow(/must name a file/);
    }
  });
});

describe('symlinks and folders others can change', () => {
  it('refuses a symlink anywhere below the root, admins included', async () => {
    await mkdir(join(base, 'outside'));
    await mkdir(roots[0] as string, { recursive: true });
    await symlink(join(base, 'outside'), join(roots[0] as string, 'link'));
    for (const confinement of [user(), admin()]) {
      await expect(resolveFolder('link/deeper', confinement)).rejects.toMatchObject({
        name: 'Forbidden',
        message: expect.stringContaining(`${join(roots[0] as string, 'link')} is a symbolic link`),
      });
      await expect(resolveFile(join(roots[0] as string, 'link', 'f'), confinement)).rejects.toThrow(
        /is a symbolic link/,
      );
    }
    // An admin's absolute path through a symlink outside the roots: refused as well.
    await symlink(join(base, 'outside'), join(base, 'alias'));
    await expect(resolveFile(join(base, 'alias', 'f'), admin())).rejects.toThrow(/alias is a symbolic link/);
    expect(await readdir(join(base, 'outside'))).toEqual([]);
  });

  it('refuses a symlinked final folder, and a final folder that is a file', async () => {
    await mkdir(roots[0] as string, { recursive: true });
    await symlink('/etc', join(roots[0] as string, 'vm'));
    await expect(resolveFolder('vm', user())).rejects.toMatchObject({
      name: 'Forbidden',
      message: expect.stringContaining('vm is a symbolic link'),
    });
    await writeFile(join(roots[0] as string, 'file'), 'x');
    await expect(resolveFolder('file', admin())).rejects.toMatchObject({
      name: 'Conflict',
      message: expect.stringContaining('file is not a folder'),
    });
  });

  it('refuses a folder writable by others unless root-owned and sticky', async () => {
    const open = join(roots[0] as string, 'open');
    await mkdir(open, { recursive: true });
    await chmod(open, 0o777);
    await expect(resolveFolder('open', user())).rejects.toMatchObject({
      name: 'Forbidden',
      message: expect.stringContaining('open is writable by other users (mode 777)'),
    });
    await expect(resolveFile('open/f', admin())).rejects.toThrow(/writable by other users/);
    await chmod(open, 0o1777);
    // Sticky and owned by root (the tests run as root, like the runner): as /tmp, accepted.
    if (process.getuid?.() === 0) expect((await resolveFolder('open', user())).path).toBe(open);
  });
});

describe('never over an existing file, files 0600', () => {
  it('refuses an existing file or a dangling symlink as the final name', async () => {
    await mkdir(roots[0] as string, { recursive: true });
    await writeFile(join(roots[0] as string, 'taken'), 'keep');
    await symlink('/nonexistent', join(roots[0] as string, 'dangling'));
    for (const name of ['taken', 'dangling']) {
      await expect(resolveFile(name, admin())).rejects.toMatchObject({
        name: 'Conflict',
        message: expect.stringContaining(`${join(roots[0] as string, name)} already exists`),
      });
    }
    expect(await readFile(join(roots[0] as string, 'taken'), 'utf8')).toBe('keep');
  });

  it('writes through an exclusive 0600 partial linked into place, never replacing a file made meanwhile', async () => {
    const place = await resolveFile('out/disk.raw', user());
    await createFolders(place, PRIVATE_FOLDER_MODE);
    const partial = await createPartial(place.path);
    expect(await mode(partial)).toBe(0o600);
    // A tool writing it with its own mode, as qemu-img or rsync may.
    await writeFile(partial, 'data');
    await chmod(partial, 0o644);
    await commitFile(partial, place.path);
    expect(await readFile(place.path, 'utf8')).toBe('data');
    expect(await mode(place.path)).toBe(0o600);
    expect(await readdir(join(roots[0] as string, 'out'))).toEqual(['disk.raw']);

    // The final name appeared between the check and the end: kept, the write refused.
    const second = await createPartial(place.path);
    await writeFile(second, 'new');
    await expect(commitFile(second, place.path)).rejects.toMatchObject({ name: 'Conflict' });
    expect(await readFile(place.path, 'utf8')).toBe('data');
  });

  it('refuses a partial that became a symlink', async () => {
    await mkdir(roots[0] as string, { recursive: true });
    const final = join(roots[0] as string, 'f');
    const partial = partialName(final);
    await writeFile(join(base, 'secret'), 'secret');
    await symlink(join(base, 'secret'), partial);
    await expect(commitFile(partial, final)).rejects.toMatchObject({ name: 'Forbidden' });
    await expect(lstat(final)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writeNewFile writes 0600 and refuses an existing name', async () => {
    const place = await resolveFolder('vm', user());
    await createFolders(place, RESTORE_FOLDER_MODE);
    const xml = join(place.path, 'vm.xml');
    await writeNewFile(xml, '<domain/>');
    expect(await mode(xml)).toBe(0o600);
    await expect(writeNewFile(xml, 'other')).rejects.toMatchObject({ name: 'Conflict' });
    expect(await readFile(xml, 'utf8')).toBe('<domain/>');
    expect(await readdir(place.path)).toEqual(['vm.xml']);
  });
});
