/**
 * restic datastore: one repository per VM at `<BASE_PATH>/<vmid>`, or per backup job at
 * `<BASE_PATH>/job-<jobid>` for the backups a job makes (local path, or SFTP when
 * RESTIC_SFTP_SERVER is set), created on the first backup.
 *
 * Snapshot layout: restic makes one snapshot per `backup --stdin` call, and a stdin stream is
 * the only way to store a disk under its own name (`disk.0.raw`) without a temporary copy (restic
 * does not follow symlinks, and NBD exports are no files at all). So a Lifeboat backup is a
 * GROUP of snapshots, one per file, all tagged `lifeboat`, `vm:<id>`, `image:<id>` and
 * `backup:<uuid>`; the uuid is the backupId. The template `vm.xml` is stored LAST and is the
 * completion marker: a group without it is an interrupted backup, which restore/stat/verify
 * treat as missing and reconcile removes. Without Lifeboat:
 * `restic snapshots --tag backup:<uuid>` then `restic dump <snapshot> /disk.0.raw > disk.0.raw`.
 *
 * Verification: each disk's sha256 is computed while it streams into restic (stream-hash.ts), and
 * before the template is stored the disks are read back, several at once (`restic dump`, which
 * checks every blob's MAC as it decrypts) and hashed as they stream: a mismatch or an unreadable
 * blob fails the backup, whose group, still without its template, is forgotten as any failed
 * backup's. restic 0.14's `check --read-data-subset` cannot select one snapshot's packs, so
 * `dump` it is.
 */
import { randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { lstat, mkdir, readdir, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mapConcurrent } from '#core/concurrency.ts';
import { type Command, ExecError, type RunOptions } from '../exec.ts';
import type { BackupOutput, DatastoreDriver, DiskSource, OperationContext, StoredFile } from './driver.ts';
import { BackupNotFound, BackupVerifyFailed } from './errors.ts';
import { basePath, checkBackupId, checkFileNames, isRepositoryFolder, TEMPLATE_NAME } from './layout.ts';
import { resticCatalog } from './restic-catalog.ts';
import { backupGroups, isComplete, ResticRepo, type Snapshot } from './restic-repo.ts';
import { measureRemote, parseServer } from './ssh.ts';
import { parseDigest, StreamHash } from './stream-hash.ts';

/** Cleanup after a failed or cancelled backup must not hang the runner. */
const CLEANUP_TIMEOUT_MS = 60_000;

/** Repositories being initialised by this process (a concurrent `init` would corrupt one). */
const initializing = new Map<string, Promise<void>>();
/** Repositories this process has seen exist: each restic call costs a key derivation, skip the check. */
const known = new Set<string>();

/** One file of a complete backup: its snapshot and its restored size. */
interface GroupFile {
  snapshotId: string;
  size: number;
}

export const resticDriver: DatastoreDriver = {
  name: 'restic',
  readsNbd: true,
  readsEarly: true,

  async backup(target, input, ctx = {}) {
    checkFileNames(input.files.map((f) => f.name));
    // A source not yet stable (`ready`) is read by the restic started below once it is: the
    // repository's init and open overlap the disk driver's snapshot.
    const ready = Promise.all(
      input.files.map((f) => (f.source.kind === 'file' ? f.source.ready : undefined)),
    );
    ready.catch(() => {}); // awaited below; a rejection fails the backup there
    return ResticRepo.use(target, input.vmId, async (repo) => {
      await ensureRepository(repo, ctx.signal);
      const backupId = randomUUID();
      const tags = ['lifeboat', `vm:${input.vmId}`, `image:${input.imageId}`, `backup:${backupId}`];
      // Sizes (for progress only) once the files are stable.
      const sizing = ready.then(() => Promise.all(input.files.map((f) => sourceSize(f.source))));
      sizing.catch(() => {});
      let total = 0;
      void sizing.then(
        (sizes) => {
          total = sizes.reduce((a, b) => a + b, 0);
        },
        () => {},
      );
      const files: StoredFile[] = [];
      const snapshotIds: string[] = [];
      let before = 0;
      try {
        for (const [index, file] of input.files.entries()) {
          const stored = await hashedBackupStream(
            repo,
            file.name,
            tags,
            file.source.kind === 'file'
              ? { inputFile: file.source.path, inputAfter: file.source.ready }
              : file.source.kind === 'nbd'
                ? { before: [{ file: 'nbdcopy', args: [file.source.uri, '-'] }] }
                : { before: [file.source.command] },
            {
              ...ctx,
              onProgress: (done) => ctx.onProgress?.(before + done, total),
            },
          );
          files.push({ name: file.name, size: stored.bytes, sha256: stored.sha256 });
          snapshotIds.push(stored.snapshotId);
          before += (await sizing)[index] ?? 0;
        }
        ctx.onVerifying?.();
        await ctx.afterStore?.({ backupId, files });
        // Last: its presence marks the group complete. Its restic opens the repository (lock
        // wait, key derivation) while the disks read back, and gets the template only once they
        // verified: a failed verify kills it before its input ends, so it stores nothing.
        const verified = gate();
        const template = backupStream(
          repo,
          TEMPLATE_NAME,
          tags,
          { input: input.template, inputAfter: verified.promise },
          { signal: ctx.signal },
        );
        template.catch(() => {});
        try {
          await readBackEach(files, (file, index) =>
            verifyStored(repo, backupId, snapshotIds[index] as string, file, ctx.signal),
          );
        } catch (error) {
          verified.fail(error);
          await template.catch(() => {});
          throw error;
        }
        const verifiedAt = new Date().toISOString();
        ctx.onVerified?.();
        verified.open();
        await template;
        return { backupId, files, verifiedAt } satisfies BackupOutput;
      } catch (error) {
        // A repository deleted behind our back: the next attempt (the task's retry) creates it.
        if (error instanceof BackupNotFound && error.repositoryMissing) known.delete(repo.location);
        else await forgetGroup(repo, backupId, false).catch(() => {});
        throw error;
      }
    });
  },

  async restore(target, ref, ctx = {}) {
    checkBackupId(ref.backupId);
    return ResticRepo.use(target, ref.vmId, async (repo) => {
      const group = await completeGroup(repo, ref.backupId, ctx.signal);
      const wanted = ref.files.map((name) => ({ name, ...groupFile(repo, group, ref.backupId, name) }));
      const total = wanted.reduce((sum, f) => sum + f.size, 0);
      await mkdir(ref.toDir, { recursive: true });
      const out: { name: string; path: string; size: number }[] = [];
      let before = 0;
      for (const file of wanted) {
        const path = join(ref.toDir, file.name);
        await dump(repo, file.snapshotId, file.name, path, {
          signal: ctx.signal,
          onProgress: (done) => ctx.onProgress?.(before + done, total),
        });
        const size = (await stat(path)).size;
        before += size;
        out.push({ name: file.name, path, size });
      }
      return out;
    });
  },

  async download(target, ref, ctx = {}) {
    checkBackupId(ref.backupId);
    return ResticRepo.use(target, ref.vmId, async (repo) => {
      const group = await completeGroup(repo, ref.backupId, ctx.signal);
      const { snapshotId, size: total } = groupFile(repo, group, ref.backupId, ref.file);
      await dump(repo, snapshotId, ref.file, ref.toPath, {
        signal: ctx.signal,
        onProgress: (done) => ctx.onProgress?.(done, total),
      });
      return { size: (await stat(ref.toPath)).size };
    });
  },

  async monitor(target, ctx = {}) {
    const base = basePath(target);
    const server = target.attributes.RESTIC_SFTP_SERVER;
    if (server) {
      const remote = parseServer(server, target.attributes.RESTIC_SFTP_USER);
      const { space, repositoryBytes } = await measureRemote(
        remote,
        base,
        `datastore ${target.id}`,
        ctx,
        isRepositoryFolder,
      );
      return {
        totalBytes: space?.totalBytes ?? null,
        freeBytes: space?.freeBytes ?? null,
        usedBytes: repositoryBytes,
      };
    }
    const space = await localSpace(base);
    return { ...space, usedBytes: await localRepositoryBytes(base) };
  },

  async rm(target, ref, ctx = {}) {
    checkBackupId(ref.backupId);
    await ResticRepo.use(target, ref.vmId, async (repo) => {
      try {
        await forgetGroup(repo, ref.backupId, true, ctx.signal);
      } catch (error) {
        // No repository: nothing to remove.
        if (!(error instanceof BackupNotFound && error.repositoryMissing)) throw error;
      }
    });
  },

  async stat(target, ref, ctx = {}) {
    checkBackupId(ref.backupId);
    return ResticRepo.use(target, ref.vmId, async (repo) => {
      const group = await completeGroup(repo, ref.backupId, ctx.signal);
      return [...group]
        .filter(([name]) => name !== TEMPLATE_NAME)
        .map(([name, { size }]) => ({ name, size }));
    });
  },

  async verify(target, ref, ctx = {}) {
    checkBackupId(ref.backupId);
    await ResticRepo.use(target, ref.vmId, async (repo) => {
      const group = await completeGroup(repo, ref.backupId, ctx.signal);
      // Structure first (index, trees), then this backup's data only: `check --read-data-subset`
      // in 0.14 picks packs by fraction, not by snapshot, whereas `dump` reads exactly this
      // backup's blobs and restic checks each blob's hash as it decrypts it.
      await repo.run(['check'], { signal: ctx.signal });
      // In name order (disk.0, disk.1, ..., vm.xml): the one named when several fail.
      const byName = [...group].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
      await readBackEach(byName, async ([name, { snapshotId, size }]) => {
        const sha256 = ref.sums?.[name];
        // A recorded sum: the bytes hashed as they stream back. Else their count.
        if (sha256) {
          await verifyStored(repo, ref.backupId, snapshotId, { name, size, sha256 }, ctx.signal);
          return;
        }
        const { stdout } = await dumpThrough(repo, ref.backupId, snapshotId, name, 'wc', ['-c'], ctx.signal);
        const read = Number(stdout.trim());
        if (read !== size) {
          throw new BackupVerifyFailed(
            `datastore ${target.id}: ${name} of backup ${ref.backupId} (VM ${ref.vmId}) reads back ${read} bytes, expected ${size}`,
          );
        }
      });
    });
  },

  catalog: (target, ctx) => resticCatalog(target, ctx),

  async reconcile(target, ref, ctx = {}) {
    await ResticRepo.use(target, ref.vmId, async (repo) => {
      try {
        // Removes only stale locks (dead process on this host, or older than 30 minutes).
        await repo.run(['unlock'], { signal: ctx.signal });
      } catch (error) {
        if (error instanceof BackupNotFound && error.repositoryMissing) return;
        throw error;
      }
      // Groups without the template are interrupted backups (see the file comment). This VM's
      // only: a job's repository holds its other VMs' backups, perhaps being written now.
      const snapshots = await repo.snapshots(['lifeboat', `vm:${ref.vmId}`], ctx.signal);
      for (const group of backupGroups(snapshots).values()) {
        if (!isComplete(group)) {
          await repo.run(['forget', ...group.snapshots.map((s) => s.id)], { signal: ctx.signal });
        }
      }
    });
  },
};

/**
 * Creates the repository (format 2) unless it exists; concurrent calls in this process share one
 * init. `init` comes first, without probing: on an existing repository it stops at the config
 * file, before deriving any key, whereas a probe would cost a whole repository open (its key
 * derivation is most of a second) on every first backup.
 */
async function ensureRepository(repo: ResticRepo, signal?: AbortSignal): Promise<void> {
  if (known.has(repo.location)) return;
  let pending = initializing.get(repo.location);
  if (!pending) {
    pending = repo
      .run(['init', '--repository-version', '2'], { signal })
      .then(() => undefined)
      .catch((error: unknown) => {
        // Another runner won the race: its repository is as good as ours.
        if (/already exists|already initialized/i.test(String((error as Error).message))) return;
        throw error;
      })
      .then(() => {
        known.add(repo.location);
      })
      .finally(() => initializing.delete(repo.location));
    initializing.set(repo.location, pending);
  }
  await pending;
}

/** A promise opened or failed from outside (a gate for a command's input). */
function gate(): { promise: Promise<void>; open: () => void; fail: (reason: unknown) => void } {
  let open!: () => void;
  let fail!: (reason: unknown) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  promise.catch(() => {});
  return { promise, open, fail };
}

type StreamSource = Pick<RunOptions, 'input' | 'inputFile' | 'inputAfter' | 'inputThrough'> & {
  before?: Command[];
};

/** Streams one source into one snapshot; returns the bytes stored and the snapshot's id. */
async function backupStream(
  repo: ResticRepo,
  name: string,
  tags: readonly string[],
  source: StreamSource,
  ctx: OperationContext,
): Promise<{ bytes: number; snapshotId: string }> {
  let bytes = 0;
  let snapshotId = '';
  await repo.run(['backup', '--stdin', '--stdin-filename', name, '--tag', tags.join(','), '--json'], {
    ...source,
    signal: ctx.signal,
    onStdoutLine: (line) => {
      const message = parseJson(line);
      if (message?.message_type === 'status' && typeof message.bytes_done === 'number') {
        ctx.onProgress?.(message.bytes_done, 0);
      } else if (message?.message_type === 'summary') {
        bytes = Number(message.total_bytes_processed ?? 0);
        snapshotId = String(message.snapshot_id ?? '');
      }
    },
  });
  if (!/^[0-9a-f]{8,64}$/.test(snapshotId)) throw new Error(`restic backup of ${name} named no snapshot`);
  return { bytes, snapshotId };
}

/**
 * {@link backupStream} with the sha256 of the bytes restic reads, computed as they pass
 * (`... | tee FIFO | restic`, or `tee FIFO < disk | restic` for a file read once ready;
 * `openssl dgst FIFO`).
 */
async function hashedBackupStream(
  repo: ResticRepo,
  name: string,
  tags: readonly string[],
  source: StreamSource,
  ctx: OperationContext,
): Promise<{ bytes: number; snapshotId: string; sha256: string }> {
  const hash = await StreamHash.create();
  // A hash that fails (or never opens the fifo) would leave tee, and restic behind it, waiting.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  if (ctx.signal?.aborted) stop.abort();
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  let hashFailure: { error: unknown } | undefined;
  try {
    const digest = hash.digest();
    digest.catch((error: unknown) => {
      hashFailure ??= { error };
      stop.abort();
    });
    let stored: { bytes: number; snapshotId: string };
    try {
      stored = await backupStream(
        repo,
        name,
        tags,
        // A file read once ready: its reader is the tee itself (one pipe stage fewer). Only a
        // gated file has a reader; any other source gets the tee as a stage of its own.
        source.inputFile !== undefined && source.inputAfter !== undefined
          ? { ...source, inputThrough: hash.tee }
          : { ...source, before: [...(source.before ?? []), hash.tee] },
        { ...ctx, signal: stop.signal },
      );
    } catch (error) {
      hash.abort();
      if (hashFailure && !ctx.signal?.aborted) throw hashFailure.error;
      throw error;
    }
    return { ...stored, sha256: await digest };
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
    await hash.close();
  }
}

/**
 * Files of one backup read back at once, up to this many: restic 0.14's `dump` loads one blob
 * at a time, so over sftp each dump spends much of its time waiting on round trips (three 1 GiB
 * disks over loopback sftp on 2 cores: 21.7 s one after another, 16.7 s two at a time, 14.3 s
 * all three at once).
 */
const READ_BACK_CONCURRENCY = 4;

/**
 * `readBack` over `items`, {@link READ_BACK_CONCURRENCY} at a time. After a failure none is
 * started, and those already reading are let end rather than killed: a killed restic 0.14
 * leaves its lock behind, which would refuse the `forget` of the failed backup and every later
 * `check` until an `unlock`. Once all have ended, the failure of the first item in the list's
 * order is thrown (the one reading them one after another would have met first), not of the
 * first to end: the same damage always reads the same.
 */
async function readBackEach<T>(
  items: readonly T[],
  readBack: (item: T, index: number) => Promise<void>,
): Promise<void> {
  const failures: { index: number; error: unknown }[] = [];
  await mapConcurrent(items, READ_BACK_CONCURRENCY, async (item, index) => {
    if (failures.length > 0) return;
    try {
      await readBack(item, index);
    } catch (error) {
      failures.push({ index, error });
    }
  });
  const first = failures.reduce<(typeof failures)[number] | undefined>(
    (a, b) => (a === undefined || b.index < a.index ? b : a),
    undefined,
  );
  if (first) throw first.error;
}

/**
 * Reads one stored disk back (`restic dump | openssl dgst`, streamed: no copy lands anywhere) and
 * compares its sha256 with the one computed while it was sent. A blob restic cannot read (MAC
 * or pack damaged) fails as a mismatch does; locks, unreachable servers and cancels stay typed.
 */
async function verifyStored(
  repo: ResticRepo,
  backupId: string,
  snapshotId: string,
  file: StoredFile,
  signal?: AbortSignal,
): Promise<void> {
  const what = `datastore ${repo.target.id}: ${file.name} of backup ${backupId} (VM ${repo.vmId})`;
  const { stdout } = await dumpThrough(
    repo,
    backupId,
    snapshotId,
    file.name,
    'openssl',
    ['dgst', '-sha256', '-r'],
    signal,
  );
  const actual = parseDigest(stdout, file.name);
  if (actual !== file.sha256) {
    throw new BackupVerifyFailed(
      `${what} reads back with sha256 ${actual}, not the ${file.sha256} sent: the stored data is damaged`,
    );
  }
}

/**
 * `restic dump <snapshot> /<name> | <tool>`: a stored file read back into a tool as it streams.
 * A blob restic cannot read (MAC or pack damaged) fails with BackupVerifyFailed naming the
 * file; locks, unreachable servers and cancels stay typed.
 */
async function dumpThrough(
  repo: ResticRepo,
  backupId: string,
  snapshotId: string,
  name: string,
  tool: string,
  args: readonly string[],
  signal?: AbortSignal,
): Promise<{ stdout: string }> {
  try {
    return await repo.run(['dump', snapshotId, `/${name}`], { signal, after: [{ file: tool, args }] });
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
    throw new BackupVerifyFailed(
      `datastore ${repo.target.id}: ${name} of backup ${backupId} (VM ${repo.vmId}) cannot be read back: ${error.stderrTail || error.message}`,
      { cause: error },
    );
  }
}

/** `restic dump | dd`: the file is written as it streams, and all-zero blocks stay holes. */
async function dump(
  repo: ResticRepo,
  snapshotId: string,
  name: string,
  toPath: string,
  ctx: OperationContext,
): Promise<void> {
  await repo.run(['dump', snapshotId, `/${name}`], {
    signal: ctx.signal,
    after: [
      {
        file: 'dd',
        args: [`of=${toPath}`, 'bs=1M', 'iflag=fullblock', 'conv=sparse,fsync', 'status=progress'],
      },
    ],
    onStderrLine: (line) => {
      const done = /^(\d+) bytes/.exec(line);
      if (done) ctx.onProgress?.(Number(done[1]), 0);
    },
  });
}

/**
 * The files of one backup, each with its snapshot and restored size, in one `find` over the
 * backup's snapshots (one restic process: each costs a key derivation, most of a second);
 * throws BackupNotFound unless the backup is complete (holds its template).
 */
async function completeGroup(
  repo: ResticRepo,
  backupId: string,
  signal?: AbortSignal,
): Promise<Map<string, GroupFile>> {
  const files = await repo.files(`backup:${backupId}`, signal);
  const group = new Map<string, GroupFile>();
  for (const { snapshot, name, size } of files) {
    // An id restic computed (hex) is all that reaches `dump` as its argument, never an option.
    if (/^[0-9a-f]{64}$/.test(snapshot)) group.set(name, { snapshotId: snapshot, size });
  }
  if (!group.has(TEMPLATE_NAME)) {
    throw new BackupNotFound(
      `backup ${backupId} of VM ${repo.vmId} is not in datastore ${repo.target.id}${files.length ? ' (incomplete)' : ''}`,
    );
  }
  return group;
}

function groupFile(
  repo: ResticRepo,
  group: Map<string, GroupFile>,
  backupId: string,
  name: string,
): GroupFile {
  const file = group.get(name);
  if (!file) {
    throw new BackupNotFound(
      `backup ${backupId} of VM ${repo.vmId} has no file ${name} in datastore ${repo.target.id}`,
    );
  }
  return file;
}

/** Forgets every snapshot of a backup (and prunes its data when asked); none is fine. */
async function forgetGroup(
  repo: ResticRepo,
  backupId: string,
  prune: boolean,
  signal?: AbortSignal,
): Promise<void> {
  // After a cancel the signal is spent: cleanup runs on its own clock. A killed restic may leave
  // its lock behind; `unlock` removes it (it only removes stale locks).
  const options = signal ? { signal } : { timeoutMs: CLEANUP_TIMEOUT_MS };
  if (!signal) await repo.run(['unlock'], options);
  const snapshots = await repo.run(['snapshots', '--json', '--tag', `backup:${backupId}`], options);
  const ids = ((JSON.parse(snapshots.stdout || '[]') ?? []) as Snapshot[]).map((s) => s.id);
  if (ids.length === 0) return;
  await repo.run(['forget', ...(prune ? ['--prune'] : []), ...ids], options);
}

async function sourceSize(source: DiskSource): Promise<number> {
  return source.kind === 'file' ? (await stat(source.path)).size : source.size;
}

/** statfs of the deepest existing folder of `path` (the repository folder may not exist yet). */
async function localSpace(path: string): Promise<{ totalBytes: number; freeBytes: number }> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const fs = await statfs(p);
      return { totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize };
    } catch (error) {
      if (p === '/' || (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** Bytes on disk (allocated blocks, as `du`) of the repositories under `base`; 0 when it does not exist. */
async function localRepositoryBytes(base: string): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await readdir(base, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  let sum = 0;
  for (const entry of entries) {
    if (entry.isDirectory() && isRepositoryFolder(entry.name)) sum += await treeBytes(join(base, entry.name));
  }
  return sum;
}

/** Allocated bytes of the regular files under `dir` (links are not followed). */
async function treeBytes(dir: string): Promise<number> {
  let sum = 0;
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [] as Dirent[]);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const info = await lstat(join(entry.parentPath, entry.name)).catch(() => undefined);
    if (info) sum += info.blocks * 512;
  }
  return sum;
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
