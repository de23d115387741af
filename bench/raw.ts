/**
 * The raw tools the benchmark compares Lifeboat with, invoked the way Lifeboat's drivers invoke
 * them (the same repository location and options from `repoArgs`, the same ssh transport from
 * `sshOptions`, the same password handling through a 0600 RESTIC_PASSWORD_FILE) but straight
 * from here, with OS pipes, as an operator's shell would run them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatastoreTarget } from '#drivers/datastore/driver.ts';
import { repoArgs } from '#drivers/datastore/restic-repo.ts';
import { joinCommand, parseServer, remoteHost, sshOptions } from '#drivers/datastore/ssh.ts';
import { timed } from './measure.ts';

/** Where raw runs write: `<base>/<vmId>` on `server` (`host:port`), like the datastores. */
export interface RawTarget {
  base: string;
  server: string;
  vmId: number;
}

/** The seconds of a raw restic run: `init` of a fresh repository, then the backup. */
export interface ResticTiming {
  initS: number;
  backupS: number;
  /** init + backup: what a first backup into a new repository costs (as Lifeboat's does). */
  totalS: number;
}

/** Waits for a child to exit 0; rejects with its stderr tail otherwise. */
export function finished(child: ChildProcess, what: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-800);
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${what} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}

/** restic's repository arguments for `<base>/<vmId>` over SFTP, as the restic datastore builds them. */
export function resticArgs(target: RawTarget): string[] {
  return repoArgs(resticTarget(target), target.vmId).args;
}

function resticTarget(target: RawTarget): DatastoreTarget {
  return {
    id: 0,
    attributes: { BASE_PATH: target.base, RESTIC_SFTP_SERVER: target.server, RESTIC_COMPRESSION: 'auto' },
    secrets: {},
  };
}

/** Runs `fn` with a restic environment whose password lives in a private 0600 file. */
export async function withPassword<T>(
  password: string,
  fn: (env: NodeJS.ProcessEnv) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-bench-pw-'));
  try {
    const file = join(dir, 'password');
    await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return await fn({
      ...process.env,
      RESTIC_PASSWORD_FILE: file,
      RESTIC_PASSWORD: '',
      RESTIC_REPOSITORY: '',
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `restic init` then a backup of `file` into a fresh repository at `<base>/<vmId>`.
 * `stdin` mode is Lifeboat's own command (`dd if=FILE bs=1M | restic backup --stdin
 * --stdin-filename NAME`), over an OS pipe; `file` mode is `restic backup FILE`.
 */
export async function rawRestic(
  target: RawTarget,
  file: string,
  name: string,
  password: string,
  mode: 'stdin' | 'file',
): Promise<ResticTiming> {
  const { args } = repoArgs(resticTarget(target), target.vmId);
  return withPassword(password, async (env) => {
    const init = await timed(() =>
      finished(
        spawn('restic', [...args, 'init', '--repository-version', '2'], {
          env,
          stdio: ['ignore', 'ignore', 'pipe'],
        }),
        'restic init',
      ),
    );
    const backup = await timed(async () => {
      if (mode === 'file') {
        await finished(
          spawn('restic', [...args, 'backup', file], { env, stdio: ['ignore', 'ignore', 'pipe'] }),
          'restic backup',
        );
        return;
      }
      const dd = spawn('dd', [`if=${file}`, 'bs=1M', 'status=none'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const restic = spawn('restic', [...args, 'backup', '--stdin', '--stdin-filename', name], {
        env,
        // dd's stdout fd itself: the bytes never pass through this process.
        stdio: [dd.stdout, 'ignore', 'pipe'],
      });
      // Our copy of the pipe's read end goes: restic holds its own, and dd's 'close' waits for it.
      dd.stdout?.destroy();
      await Promise.all([finished(dd, 'dd'), finished(restic, 'restic backup --stdin')]);
    });
    return { initS: init.seconds, backupS: backup.seconds, totalS: init.seconds + backup.seconds };
  });
}

/** The id of a restic repository (`cat config`), to find its local cache folder. */
export async function resticRepoId(target: RawTarget, password: string): Promise<string> {
  const { args } = repoArgs(resticTarget(target), target.vmId);
  return withPassword(password, async (env) => {
    const child = spawn('restic', [...args, 'cat', 'config'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    await finished(child, 'restic cat config');
    return String((JSON.parse(stdout) as { id?: string }).id ?? '');
  });
}

/** Removes restic's local cache of a repository (restic writes one under ~/.cache for each). */
export async function removeResticCache(repoId: string): Promise<void> {
  if (!/^[0-9a-f]{64}$/.test(repoId)) return;
  const root = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  await rm(join(root, 'restic', repoId), { recursive: true, force: true });
}

/** `rsync -aS --mkpath -e <ssh ...> FILE host:<base>/<vmId>/<dir>/<name>`, as the rsync driver runs it. */
export async function rawRsync(target: RawTarget, file: string, dir: string, name: string): Promise<number> {
  const server = parseServer(target.server);
  const transport = joinCommand(['ssh', ...sshOptions(server)]);
  const dest = `${remoteHost(server)}:${target.base}/${target.vmId}/${dir}/${name}`;
  const { seconds } = await timed(() =>
    finished(
      spawn('rsync', ['-e', transport, '-aS', '--mkpath', file, dest], {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
      'rsync',
    ),
  );
  return seconds;
}
