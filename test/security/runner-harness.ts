/**
 * The runner's queue side for the hostile battery (hostile-runner.test.ts): the real poller
 * (`handleMessage`), executor, journal, reporter, sealed-secret resolver and confinement, over a
 * fake queue, fake task tokens and drivers that write real files. Everything lives in one temp
 * folder: the runner's state folder, its restore root with traps in it (symlinks into `outside/`,
 * an existing file, a folder others can write), and the sentinel tree `outside/`.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DownloadTask, RestoreTask, TaskDatastore } from '#core/contracts/tasks.ts';
import type { PreparedBackup } from '#drivers/disk/driver.ts';
import { Executor } from '#runner/executor.ts';
import { Journal } from '#runner/journal.ts';
import type { Logger } from '#runner/log.ts';
import { handleMessage } from '#runner/poller.ts';
import { Reporter } from '#runner/reporter.ts';
import { hostKeyPath, sealedSecretResolver } from '#runner/sealed-secrets.ts';
import {
  FakeQueue,
  FakeTaskTokens,
  fakeDrivers,
  sealedDatastore,
  type TokenCall,
  until,
} from '../../runner/testing/fakes.ts';
import { TEST_HOST_KEY } from '../helpers/host-key.ts';

/** The datastore password every task carries sealed: it must show nowhere. */
export const PASSWORD = 'runner-battery-pw-8c1f-Tr0ub4dor';

/** A logger that keeps every line as the JSON the real one would write. */
function capturingLogger(lines: string[], bound: Record<string, unknown> = {}): Logger {
  const logger = (level: string, message: string, fields: Record<string, unknown> = {}) => {
    lines.push(JSON.stringify({ level, message, ...bound, ...fields }));
  };
  return Object.assign(logger, {
    child: (more: Record<string, unknown>) => capturingLogger(lines, { ...bound, ...more }),
  });
}

/** One line per file system entry under `dir` (type, mode, size, mtime), symlinks not followed. */
async function walk(dir: string, rel: string, out: string[], skip: (rel: string) => boolean): Promise<void> {
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const relPath = rel ? `${rel}/${name}` : name;
    if (skip(relPath)) continue;
    const st = await lstat(path);
    const kind = st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
    out.push(`${relPath} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.mtimeMs}`);
    if (kind === 'dir') await walk(path, relPath, out, skip);
  }
}

/**
 * Builds the runner and its folders; `close()` removes everything. With `rootThroughLink`, the
 * configured restore root `restores` is a symlink to the real folder `restores-real` (an
 * operator may name a root through a link: the runner resolves the root itself, once).
 */
export async function hostileRunner(options: { rootThroughLink?: boolean } = {}) {
  const base = await mkdtemp(join(tmpdir(), 'lifeboat-hostile-runner-'));
  const state = join(base, 'state');
  const configured = join(base, 'restores');
  const root = options.rootThroughLink ? join(base, 'restores-real') : configured;
  const outside = join(base, 'outside');
  await mkdir(state, { mode: 0o700 });
  await writeFile(hostKeyPath(state), TEST_HOST_KEY.privateKey, { mode: 0o600 });
  for (const dir of ['etc', 'empty']) await mkdir(join(outside, dir), { recursive: true, mode: 0o700 });
  await writeFile(join(outside, 'secret.txt'), 'keep me');
  await writeFile(join(outside, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  // The restore root and its traps.
  await mkdir(join(root, 'sub'), { recursive: true, mode: 0o700 });
  await mkdir(join(root, 'existing-dir'), { mode: 0o700 });
  await mkdir(join(root, 'taken'), { mode: 0o700 });
  await mkdir(join(root, 'open'), { mode: 0o700 });
  await chmod(join(root, 'open'), 0o777);
  await writeFile(join(root, 'existing.raw'), 'old data');
  await writeFile(join(root, 'taken', 'copy-disk-0.qcow2'), 'old disk');
  await writeFile(join(root, 'afile'), 'a file, not a folder');
  await symlink(outside, join(root, 'link'));
  await symlink(join(outside, 'secret.txt'), join(root, 'linkfile'));
  await symlink(join(outside, 'etc'), join(root, 'sub', 'link'));
  await symlink(join(outside, 'empty'), join(root, 'dirlink'));
  if (options.rootThroughLink) await symlink(root, configured);

  const lines: string[] = [];
  const log = capturingLogger(lines);
  const journalFile = join(state, 'journal.jsonl');
  const journal = await Journal.open(journalFile);
  const tokens = new FakeTaskTokens();
  const reporter = new Reporter(tokens, log, 1);
  const queue = new FakeQueue();
  /** Every driver call, with what it was handed. */
  const calls: string[] = [];
  /** Drivers that write real files, and only under the system's temp folder. */
  const safe = (path: string) => {
    if (!path.startsWith(`${tmpdir()}/`)) throw new Error(`fake driver: not writing ${path}`);
  };
  const prepared: PreparedBackup = {
    files: [],
    template: '<domain/>',
    state: 'RUNNING',
    release: async () => {},
  };
  const drivers = fakeDrivers(
    {
      prepareBackup: async (vm) => {
        calls.push(`prepareBackup ${vm.domain}`);
        return prepared;
      },
      restoreDisk: async (_file, _format, toPath) => {
        calls.push(`restoreDisk ${toPath}`);
        safe(toPath);
        await writeFile(toPath, 'qcow2', { flag: 'wx' });
        return { path: toPath, format: 'qcow2', virtualSize: 1024, size: 5 };
      },
    },
    {
      backup: async () => {
        calls.push('backup');
        return { backupId: 'snap-x', files: [] };
      },
      download: async (_target, ref) => {
        calls.push(`download ${ref.toPath}`);
        safe(ref.toPath);
        await writeFile(ref.toPath, 'file data');
        return { size: 9 };
      },
      restore: async (_target, ref) => {
        calls.push(`restore ${ref.toDir}`);
        safe(ref.toDir);
        await mkdir(ref.toDir, { recursive: true });
        for (const name of ref.files) await writeFile(join(ref.toDir, name), 'raw');
        return ref.files.map((name) => ({ name, path: join(ref.toDir, name), size: 3 }));
      },
      monitor: async () => {
        calls.push('monitor');
        return { totalBytes: 1, freeBytes: 1, usedBytes: 0 };
      },
    },
  );
  const executor = new Executor({
    journal,
    reporter,
    drivers,
    secrets: sealedSecretResolver(hostKeyPath(state)),
    progress: async () => {},
    stateDir: state,
    restoreRoots: [configured],
    log,
  });

  return {
    base,
    /** The restore root as configured (a symlink with `rootThroughLink`). */
    configured,
    /** Its real folder. */
    root,
    outside,
    tokens,
    queue,
    calls,
    lines,
    /** Puts `body` on the queue, lets the real poller handle it, waits until no task runs. */
    async deliver(body: unknown): Promise<{ answers: TokenCall[]; deleted: boolean }> {
      const before = tokens.answers().length;
      const message = queue.push(body);
      await handleMessage(message, { queue, executor, reporter, log });
      await until(() => executor.size === 0);
      return {
        answers: tokens.answers().slice(before),
        deleted: queue.deleted.includes(message.receiptHandle),
      };
    },
    /** Everything in the folder but the journal and the work folders (and the state folder's own times). */
    async listing(): Promise<string[]> {
      const out: string[] = [];
      await walk(base, '', out, (rel) => rel === 'state' || rel.startsWith('state/work'));
      await walk(state, 'state', out, (rel) => rel === 'state/journal.jsonl' || rel.startsWith('state/work'));
      return out.sort();
    },
    journalText: () => readFile(journalFile, 'utf8').catch(() => ''),
    close: () => rm(base, { recursive: true, force: true }),
  };
}

/** The datastore every task names: the password sealed to the test host key. */
export function datastore(overrides: Partial<TaskDatastore> = {}): TaskDatastore {
  return sealedDatastore(
    { RESTIC_PASSWORD: PASSWORD },
    { attributes: { BASE_PATH: '/srv/backups' }, ...overrides },
  );
}

/** A download task a user asked for (confined). */
export function downloadTask(
  n: number,
  overrides: Record<string, unknown> = {},
): DownloadTask & Record<string, unknown> {
  return {
    v: 1,
    kind: 'download',
    taskId: `${n}/RunOnHost`,
    token: `token-${n}`,
    heartbeatSeconds: 120,
    vmId: 3,
    backupId: 'snap-1',
    datastore: datastore(),
    file: 'disk.0.raw',
    toPath: `exports/file-${n}.raw`,
    confine: true,
    ...overrides,
  };
}

/** A restore task of one disk into a new folder (confined), no VM defined. */
export function restoreTask(
  n: number,
  overrides: Record<string, unknown> = {},
): RestoreTask & Record<string, unknown> {
  return {
    v: 1,
    kind: 'restore',
    taskId: `${n}/RunOnHost`,
    token: `token-${n}`,
    heartbeatSeconds: 120,
    imageId: 9,
    vmId: 3,
    backupId: 'snap-1',
    disks: [{ id: 0, file: 'disk.0.raw' }],
    datastore: datastore(),
    target: `restored-${n}`,
    confine: true,
    name: 'copy',
    template: null,
    increment: null,
    chain: [],
    ...overrides,
  };
}
