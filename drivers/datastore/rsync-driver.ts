/**
 * rsync datastore: plain files on a server reached over ssh, laid out as
 * `<BASE_PATH>/<vmid>/<hash>/<file>` (hash: a fresh random id per backup, the backupId) next to
 * `vm.xml` and `SHA256SUMS`.
 *
 * Completion marker: the disks are uploaded straight into their final folder (`--mkpath`, no
 * temporary copy and no remote rename, which would need a remote command), and an empty-ish
 * `.complete` file (a JSON list of the files) is uploaded LAST. A folder without it is an
 * interrupted backup: restore/stat/verify treat it as missing and reconcile deletes it. rm
 * deletes `.complete` first, so a half-deleted backup is never mistaken for a good one.
 *
 * Checksums: sha256 of each disk is computed WHILE rsync reads it (both read the same file at the
 * same time, so the page cache serves the second reader: one disk read, the hash on the other
 * core, by `openssl dgst` with the CPU's SHA instructions), and stored in `SHA256SUMS` for
 * `verify` and for operators (`sha256sum -c`). Before the marker is sent (while `vm.xml` and
 * `SHA256SUMS` are), the server hashes the stored disks itself (`openssl dgst` or `sha256sum` over
 * ssh: `remoteSha256`) and each sum must equal the one computed while sending, else the backup fails
 * (BackupVerifyFailed naming the disk) and its folder is removed as any failed backup's. The
 * `verify` operation has the server hash every file against `SHA256SUMS` (and `SHA256SUMS`
 * against the sums the image recorded); only a server that runs no command for us (rsync-only
 * accounts: a forced command such as rrsync) has each file fetched into a private temporary
 * folder and hashed there, which costs the size of one file in temporary space on the runner's
 * host. A backup to such a server is verified by rsync itself (`--checksum --dry-run
 * --itemize-changes` from the source just sent, still on the runner's host, to the stored
 * file): the server's rsync reads each stored file whole and checksums it, the sender the
 * source, and any itemized change (content differs, file missing or replaced) fails the backup.
 * The sha256 recorded stays the one computed while sending.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REMOTE_PATH } from '#core/datastore-attributes.ts';
import { ValidationError } from '#core/errors.ts';
import { ExecError, run } from '../exec.ts';
import type { BackupOutput, DatastoreDriver, OperationContext, StoredFile } from './driver.ts';
import { BackupNotFound, BackupVerifyFailed, RemoteCommandRefused, UnsupportedSource } from './errors.ts';
import {
  basePath,
  checkBackupId,
  checkFileNames,
  isPlainFileName,
  isRepositoryFolder,
  TEMPLATE_NAME,
  vmPath,
} from './layout.ts';
import { rsyncCatalog } from './rsync-catalog.ts';
import { type ListEntry, MARKER, RsyncRemote, SUMS } from './rsync-remote.ts';
import { measureRemote, parseSumLines, remoteSha256, sumListing } from './ssh.ts';
import { parseDigest } from './stream-hash.ts';

const CLEANUP_TIMEOUT_MS = 60_000;

export const rsyncDriver: DatastoreDriver = {
  name: 'rsync',
  readsNbd: false,

  async backup(target, input, ctx = {}) {
    checkFileNames(
      input.files.map((f) => f.name),
      [SUMS],
    );
    const paths = input.files.map((file) => {
      if (file.source.kind !== 'file') {
        throw new UnsupportedSource(
          `datastore ${target.id} (rsync) stores files only; ${file.name} is ${file.source.kind === 'nbd' ? 'an NBD export' : 'a stream'}: use a restic datastore or a file snapshot`,
        );
      }
      return file.source.path;
    });
    const remote = new RsyncRemote(target);
    const hash = randomBytes(8).toString('hex');
    const dir = `${vmPath(target, input.vmId)}/${hash}`;
    const sizes = await Promise.all(paths.map(async (p) => (await stat(p)).size));
    const total = sizes.reduce((a, b) => a + b, 0);
    return withTempDir(async (tmp) => {
      const files: StoredFile[] = [];
      const sums: string[] = [];
      let verifiedAt = '';
      let before = 0;
      try {
        for (const [index, file] of input.files.entries()) {
          const path = paths[index] as string;
          const [, sum] = await Promise.all([
            remote.rsync(
              [...remote.userArgs, '--mkpath', '--info=progress2', path, remote.spec(`${dir}/${file.name}`)],
              {
                signal: ctx.signal,
                onStdoutLine: progress((done) => ctx.onProgress?.(before + done, total)),
              },
            ),
            sha256Of(path, ctx.signal),
          ]);
          sums.push(`${sum}  ${file.name}`);
          files.push({ name: file.name, size: sizes[index] ?? 0, sha256: sum });
          before += sizes[index] ?? 0;
        }
        ctx.onVerifying?.();
        await ctx.afterStore?.({ backupId: hash, files });
        // vm.xml and SHA256SUMS travel while the server hashes the disks (neither marks the
        // backup complete); both are settled before a failure removes the folder.
        const [verifying, sending] = await Promise.allSettled([
          verifyStored(remote, dir, { vmId: input.vmId, backupId: hash }, files, paths, ctx.signal),
          sendTemplateAndSums(remote, tmp, dir, input.template, sums, ctx.signal),
        ]);
        if (verifying.status === 'rejected') throw verifying.reason;
        if (sending.status === 'rejected') throw sending.reason;
        verifiedAt = new Date().toISOString();
        ctx.onVerified?.();
        // Last: its presence marks the backup complete.
        await writeFile(
          join(tmp, MARKER),
          `${JSON.stringify({ vmId: input.vmId, imageId: input.imageId, files })}\n`,
        );
        await remote.rsync([...remote.userArgs, join(tmp, MARKER), remote.spec(`${dir}/`)], {
          signal: ctx.signal,
        });
      } catch (error) {
        await mkdir(join(tmp, 'empty'), { recursive: true });
        await remote
          .remove(vmPath(target, input.vmId), hash, join(tmp, 'empty'), { timeoutMs: CLEANUP_TIMEOUT_MS })
          .catch(() => {});
        throw error;
      }
      return { backupId: hash, files, verifiedAt } satisfies BackupOutput;
    });
  },

  async restore(target, ref, ctx = {}) {
    const remote = new RsyncRemote(target);
    const { dir, entries } = await completeBackup(remote, ref, ctx.signal);
    const sizes = new Map(entries.map((e) => [e.name, e.size]));
    for (const name of ref.files) {
      if (!sizes.has(name) || name === MARKER) {
        throw new BackupNotFound(
          `backup ${ref.backupId} of VM ${ref.vmId} has no file ${name} in datastore ${target.id}`,
        );
      }
    }
    const total = ref.files.reduce((sum, name) => sum + (sizes.get(name) ?? 0), 0);
    await mkdir(ref.toDir, { recursive: true });
    const out: { name: string; path: string; size: number }[] = [];
    let before = 0;
    for (const name of ref.files) {
      const path = join(ref.toDir, name);
      await fetch(
        remote,
        `${dir}/${name}`,
        path,
        (done) => ctx.onProgress?.(before + done, total),
        ctx.signal,
      );
      const size = (await stat(path)).size;
      before += size;
      out.push({ name, path, size });
    }
    return out;
  },

  async download(target, ref, ctx = {}) {
    const remote = new RsyncRemote(target);
    const { dir, entries } = await completeBackup(remote, ref, ctx.signal);
    const entry = entries.find((e) => e.name === ref.file && !e.isDir && e.name !== MARKER);
    if (!entry) {
      throw new BackupNotFound(
        `backup ${ref.backupId} of VM ${ref.vmId} has no file ${ref.file} in datastore ${target.id}`,
      );
    }
    const path = `${dir}/${ref.file}`;
    // toPath is the empty 0600 file the runner made: only a regular file of the listed size may
    // fill it (safe receive skips a link or device, which would leave it empty and "done").
    if (!entry.isFile) throw notRegular(remote, path);
    await fetch(remote, path, ref.toPath, (done) => ctx.onProgress?.(done, entry.size), ctx.signal);
    const { size } = await stat(ref.toPath);
    if (size !== entry.size) {
      throw new BackupNotFound(
        `datastore ${target.id}: ${path} changed on the backup server while it was read (${size} of ${entry.size} bytes)`,
      );
    }
    return { size };
  },

  async monitor(target, ctx = {}) {
    const remote = new RsyncRemote(target);
    const base = basePath(target);
    // sftp statvfs, else df over ssh; an rsync-only account sees neither: unknown, never 0.
    const { space } = await measureRemote(remote.server, base, `datastore ${target.id}`, ctx);
    const used = await usedBytes(remote, base, ctx);
    return { totalBytes: space?.totalBytes ?? null, freeBytes: space?.freeBytes ?? null, usedBytes: used };
  },

  async rm(target, ref, ctx = {}) {
    checkBackupId(ref.backupId);
    const remote = new RsyncRemote(target);
    const parent = vmPath(target, ref.vmId);
    const entries = await remote.listOrEmpty(parent, ctx.signal);
    if (!entries.some((e) => e.name === ref.backupId)) return;
    await withTempDir(async (tmp) => {
      const empty = join(tmp, 'empty');
      await mkdir(empty);
      await remote.remove(`${parent}/${ref.backupId}`, MARKER, empty, { signal: ctx.signal });
      await remote.remove(parent, ref.backupId, empty, { signal: ctx.signal });
    });
  },

  async stat(target, ref, ctx = {}) {
    const remote = new RsyncRemote(target);
    const { entries } = await completeBackup(remote, ref, ctx.signal);
    return entries
      .filter((e) => !e.isDir && ![MARKER, SUMS, TEMPLATE_NAME].includes(e.name))
      .map(({ name, size }) => ({ name, size }));
  },

  async verify(target, ref, ctx = {}) {
    const remote = new RsyncRemote(target);
    const { dir, entries } = await completeBackup(remote, ref, ctx.signal);
    const failed = (name: string, why: string) =>
      new BackupVerifyFailed(
        `datastore ${target.id}: ${name} of backup ${ref.backupId} (VM ${ref.vmId}) ${why}`,
      );
    await withTempDir(async (tmp) => {
      await fetch(remote, `${dir}/${SUMS}`, join(tmp, SUMS), () => {}, ctx.signal);
      const expected = parseSumLines(await readFile(join(tmp, SUMS), 'utf8'));
      for (const name of expected.keys()) {
        // The server's own file: a name from it reaches a local path and a remote command below.
        if (!isPlainFileName(name)) {
          throw failed(
            JSON.stringify(name.slice(0, 80)),
            `is named in ${SUMS}, and is no file name a backup holds`,
          );
        }
      }
      const missing = entries.filter(
        (e) => !e.isDir && ![MARKER, SUMS].includes(e.name) && !expected.has(e.name),
      );
      if (missing.length) throw failed(missing[0]?.name ?? '', `is not in ${SUMS}`);
      for (const name of expected.keys()) {
        if (!entries.some((e) => e.name === name && e.isFile)) throw failed(name, 'is missing');
      }
      // SHA256SUMS lies on the server too: what the image recorded at backup time prevails.
      for (const [name, sum] of Object.entries(ref.sums ?? {})) {
        if (expected.get(name) !== sum) {
          throw failed(
            name,
            `has sha256 ${expected.get(name) ?? 'none'} in ${SUMS}, not the ${sum} recorded`,
          );
        }
      }
      // The server hashes its own files (no transfer); one that runs no command for us has each
      // file fetched here and hashed, one at a time.
      const paths = [...expected.keys()].map((name) => `${dir}/${name}`);
      const onServer = await remoteSha256(remote.server, paths, `datastore ${target.id}`, ctx).catch(
        (error: unknown) => {
          if (error instanceof ExecError || error instanceof RemoteCommandRefused) return undefined;
          throw error;
        },
      );
      for (const [name, sum] of expected) {
        let actual = onServer?.get(`${dir}/${name}`);
        if (!onServer) {
          const local = join(tmp, name);
          await fetch(remote, `${dir}/${name}`, local, (done) => ctx.onProgress?.(done, 0), ctx.signal);
          actual = await sha256Of(local, ctx.signal);
          await rm(local, { force: true });
        }
        if (actual !== sum) {
          throw failed(
            name,
            `reads back with sha256 ${actual ?? 'none'}, not ${sum}: the stored data is damaged`,
          );
        }
      }
    });
  },

  catalog: (target, ctx) => rsyncCatalog(target, ctx),

  async reconcile(target, ref, ctx = {}) {
    const remote = new RsyncRemote(target);
    const parent = vmPath(target, ref.vmId);
    const backups = (await remote.listOrEmpty(parent, ctx.signal)).filter((e) => e.isDir);
    await withTempDir(async (tmp) => {
      const empty = join(tmp, 'empty');
      await mkdir(empty);
      for (const backup of backups) {
        const files = await remote.listOrEmpty(`${parent}/${backup.name}`, ctx.signal);
        if (!files.some((e) => e.name === MARKER))
          await remote.remove(parent, backup.name, empty, { signal: ctx.signal });
      }
    });
  },
};

/** Sends `vm.xml` and `SHA256SUMS` (the disks' `sums` lines and the template's) into `dir`. */
async function sendTemplateAndSums(
  remote: RsyncRemote,
  tmp: string,
  dir: string,
  template: string,
  sums: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  await writeFile(join(tmp, TEMPLATE_NAME), template);
  const lines = [...sums, `${await sha256Of(join(tmp, TEMPLATE_NAME))}  ${TEMPLATE_NAME}`];
  await writeFile(join(tmp, SUMS), `${lines.join('\n')}\n`);
  await remote.rsync(
    [...remote.userArgs, '--mkpath', join(tmp, TEMPLATE_NAME), join(tmp, SUMS), remote.spec(`${dir}/`)],
    { signal },
  );
}

/**
 * The server's own sha256 of each stored disk against the one computed while sending it
 * (`files[].sha256`); BackupVerifyFailed naming the first disk that differs or was not hashed.
 * A server that runs no command for us has rsync compare each stored disk with its source
 * (`sources`, in the order of `files`) instead: {@link compareByRsync}.
 */
async function verifyStored(
  remote: RsyncRemote,
  dir: string,
  ref: { vmId: number; backupId: string },
  files: readonly StoredFile[],
  sources: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  const what = `datastore ${remote.target.id}`;
  const backup = `backup ${ref.backupId} (VM ${ref.vmId})`;
  let sums: Map<string, string>;
  try {
    sums = await remoteSha256(
      remote.server,
      files.map((f) => `${dir}/${f.name}`),
      what,
      { signal },
    );
  } catch (error) {
    if (error instanceof RemoteCommandRefused) {
      for (const [index, file] of files.entries()) {
        await compareByRsync(
          remote,
          sources[index] as string,
          `${dir}/${file.name}`,
          `${file.name} of ${backup}`,
          signal,
        );
      }
      return;
    }
    if (!(error instanceof ExecError)) throw error;
    const named = files.find((f) => error.stderrTail.includes(`${dir}/${f.name}`)) ?? files[0];
    throw new BackupVerifyFailed(
      `${what}: ${named?.name} of ${backup} cannot be hashed on the backup server: ${error.stderrTail || error.message}`,
      { cause: error },
    );
  }
  for (const file of files) {
    const actual = sums.get(`${dir}/${file.name}`);
    if (actual !== file.sha256) {
      throw new BackupVerifyFailed(
        `${what}: ${file.name} of ${backup} reads back on the backup server with sha256 ${actual ?? 'none'}, not the ${file.sha256} sent: the stored data is damaged`,
      );
    }
  }
}

/**
 * Whether the stored file `path` on the server holds the bytes of the local `source`, by rsync
 * alone (a server that runs no other command): a dry run with `--checksum` has the server's rsync
 * read the stored file whole and checksum it, the local one the source; any itemized change
 * (content differs, the file missing or of another kind) throws BackupVerifyFailed naming
 * `label`. No RSYNC_ARGS here: times, permissions or owners (which an rsync-only account may not
 * be able to set) must not read as a change; only content and presence count.
 */
async function compareByRsync(
  remote: RsyncRemote,
  source: string,
  path: string,
  label: string,
  signal?: AbortSignal,
): Promise<void> {
  const what = `datastore ${remote.target.id}`;
  // Checked where used: an absolute local file (never read as an option), a datastore path.
  if (!source.startsWith('/')) throw new ValidationError(`not an absolute source path: ${source}`);
  if (!REMOTE_PATH.test(path)) throw new ValidationError(`not a datastore path: ${path}`);
  let stdout: string;
  try {
    stdout = await remote.rsync(
      // --copy-links: the source's bytes as sha256 read them, even through a link.
      [
        '--checksum',
        '--dry-run',
        '--itemize-changes',
        '--no-recursive',
        '--copy-links',
        source,
        remote.spec(path),
      ],
      { signal },
    );
  } catch (error) {
    if (!(error instanceof ExecError || error instanceof BackupNotFound)) throw error;
    throw new BackupVerifyFailed(
      `${what}: ${label} cannot be compared by rsync on the backup server: ${error.message}`,
      {
        cause: error,
      },
    );
  }
  // `--itemize-changes` prints one line per file that would be sent: `<fc.......... name`.
  const change = stdout.split('\n').find((line) => line.trim() !== '');
  if (change !== undefined) {
    throw new BackupVerifyFailed(
      `${what}: ${label} reads back on the backup server unlike the data sent (rsync --checksum: ${change.trim()}): the stored data is damaged`,
    );
  }
}

/** The folder and entries of a complete backup; BackupNotFound when absent or unfinished. */
async function completeBackup(
  remote: RsyncRemote,
  ref: { vmId: number; backupId: string },
  signal?: AbortSignal,
): Promise<{ dir: string; entries: ListEntry[] }> {
  checkBackupId(ref.backupId);
  const dir = `${vmPath(remote.target, ref.vmId)}/${ref.backupId}`;
  const entries = await remote.listOrEmpty(dir, signal);
  if (!entries.some((e) => e.name === MARKER)) {
    throw new BackupNotFound(
      `backup ${ref.backupId} of VM ${ref.vmId} is not in datastore ${remote.target.id}${entries.length ? ' (incomplete)' : ''}`,
    );
  }
  return { dir, entries };
}

/**
 * rsync one remote file to a local path, with the user's options (sparse files stay sparse with
 * -S) and the fixed safe ones after them (`SAFE_RECEIVE_ARGS`: a regular file, 0600, ours).
 * Anything else the server serves under that name (a link, a device, a folder) is refused.
 */
async function fetch(
  remote: RsyncRemote,
  path: string,
  toPath: string,
  onProgress: (done: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  await remote.rsync([...remote.receiveArgs(), '--info=progress2', remote.spec(path), toPath], {
    signal,
    onStdoutLine: progress(onProgress),
  });
  const received = await lstat(toPath).catch(() => undefined);
  if (!received?.isFile()) throw notRegular(remote, path);
}

function notRegular(remote: RsyncRemote, path: string): BackupNotFound {
  return new BackupNotFound(
    `datastore ${remote.target.id}: ${path} on the backup server is not a regular file (links, devices and folders are never received)`,
  );
}

/** Sum of the sizes of the files of the datastore's repositories (`<base>/<vmid>/...`) on the server. */
async function usedBytes(remote: RsyncRemote, base: string, ctx: OperationContext): Promise<number> {
  let stdout = '';
  try {
    stdout = await remote.rsync(['--list-only', '-r', '--no-human-readable', remote.spec(`${base}/`)], {
      signal: ctx.signal,
    });
  } catch (error) {
    // No backups folder yet: nothing used.
    if (!(error instanceof BackupNotFound && error.repositoryMissing)) throw error;
  }
  // `-rw-r--r--   1000 2026/12/06 12:26:00 63/<hash>/disk.0.raw`, relative to base.
  return sumListing(stdout, base, isRepositoryFolder, /^-\S{9}\s+(\d+)\s+\S+\s+\S+\s+(.+)$/);
}

/** Parses `--info=progress2` lines (`  1,048,576 100% 242.19MB/s 0:00:00 (xfr#1, ...)`). */
function progress(onProgress: (done: number) => void): (line: string) => void {
  return (line) => {
    const m = /^\s*([\d,]+)\s+\d+%/.exec(line);
    if (m) onProgress(Number((m[1] as string).replace(/,/g, '')));
  };
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * sha256 hex of a file, by `openssl dgst` (SHA-NI: about 4x the speed of coreutils' sha256sum
 * here, which matters since it runs beside rsync on the same cores). The sums file it feeds is
 * in `sha256sum -c` format.
 */
async function sha256Of(path: string, signal?: AbortSignal): Promise<string> {
  const { stdout } = await run({ file: 'openssl', args: ['dgst', '-sha256', '-r', path] }, { signal });
  return parseDigest(stdout, path);
}
