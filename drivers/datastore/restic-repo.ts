/**
 * One VM's restic repository for the length of one driver operation: the repository location,
 * the global options from the datastore's attributes, the password file, and the mapping of
 * restic's failures to typed errors.
 *
 * RESTIC_PASSWORD reaches restic only as a 0600 file in a private 0700 folder
 * (`RESTIC_PASSWORD_FILE`), removed when the operation ends: never argv, env values or logs.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '#core/errors.ts';
import {
  Cancelled,
  type Command,
  describe,
  ExecError,
  type RunOptions,
  type RunResult,
  runPipeline,
} from '../exec.ts';
import type { DatastoreTarget } from './driver.ts';
import { BackupNotFound, DatastoreAuthFailed, DatastoreLocked, DatastoreUnreachable } from './errors.ts';
import { repositoryPath, TEMPLATE_NAME } from './layout.ts';
import { joinCommand, parseServer, sshFailure, sshOptions } from './ssh.ts';

/**
 * Where restic keeps the packs it assembles before uploading them (16 MiB each, a few per
 * connection: 100-200 MiB while a disk streams). On tmpfs they cost memory instead of writes to
 * the host's disk, which a backup should not need. LIFEBOAT_RESTIC_TMPDIR overrides it.
 */
const RESTIC_TMPDIR = process.env.LIFEBOAT_RESTIC_TMPDIR ?? (existsSync('/dev/shm') ? '/dev/shm' : undefined);

/** restic's `snapshots --json` entry (the fields we read). */
export interface Snapshot {
  id: string;
  time: string;
  paths: string[];
  tags?: string[];
}

/** Builds restic commands for one VM's repository; see the file comment. */
export class ResticRepo {
  private constructor(
    readonly target: DatastoreTarget,
    readonly vmId: number,
    /** `-r` value: a local path or `sftp:user@host:/path`. */
    readonly location: string,
    private readonly globalArgs: string[],
    private readonly env: Record<string, string>,
  ) {}

  /**
   * Opens the repository of `vmId` (or of the target's job) and hands it to `fn`; the password
   * file lives only that long.
   */
  static async use<T>(
    target: DatastoreTarget,
    vmId: number,
    fn: (repo: ResticRepo) => Promise<T>,
  ): Promise<T> {
    const password = target.secrets.RESTIC_PASSWORD;
    if (!password) throw new ValidationError(`datastore ${target.id} has no RESTIC_PASSWORD`);
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-restic-'));
    try {
      const passwordFile = join(dir, 'password');
      await writeFile(passwordFile, `${password}\n`, { mode: 0o600, flag: 'wx' });
      const { location, args } = repoArgs(target, vmId);
      // Empty values keep a runner's own RESTIC_* environment from choosing another password or repo.
      const env = {
        RESTIC_PASSWORD_FILE: passwordFile,
        RESTIC_PASSWORD: '',
        RESTIC_PASSWORD_COMMAND: '',
        RESTIC_REPOSITORY: '',
        RESTIC_REPOSITORY_FILE: '',
        RESTIC_PROGRESS_FPS: '2',
        ...(RESTIC_TMPDIR ? { TMPDIR: RESTIC_TMPDIR } : {}),
      };
      return await fn(new ResticRepo(target, vmId, location, args, env));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** `restic <global options> <args>`, wrapped in nice/ionice when the datastore asks for it. */
  command(args: readonly string[]): Command {
    const { RESTIC_NICE: nice, RESTIC_IONICE: ionice } = this.target.attributes;
    const prefix: string[] = [];
    if (nice) prefix.push('nice', '-n', nice);
    if (ionice) prefix.push('ionice', '-c2', '-n', ionice);
    const full = ['restic', ...this.globalArgs, ...args];
    const [file, ...rest] = [...prefix, ...full] as [string, ...string[]];
    return { file, args: rest, env: this.env };
  }

  /** Runs `before... | restic <args> | after...`; restic's failures come back typed. */
  async run(
    args: readonly string[],
    options: RunOptions & { before?: Command[]; after?: Command[] } = {},
  ): Promise<RunResult> {
    const { before = [], after = [], ...runOptions } = options;
    const restic = this.command(args);
    const commands = [...before, restic, ...after];
    if (commands.length === 1) {
      try {
        return await runPipeline(commands, runOptions);
      } catch (error) {
        throw error instanceof ExecError ? this.typed(error) : error;
      }
    }
    // Fail fast: once the last command's stderr shows a failure (restic's `Fatal:`, or a line
    // from dd that is no progress), stop the whole pipeline and report that text, rather than
    // wait for the other side of the pipe to notice.
    const last = after.length ? 'writer' : 'restic';
    const failure = last === 'restic' ? /^Fatal: / : /^(?!\d+ bytes|\d+\+\d+ records)/;
    const inner = new AbortController();
    const outer = runOptions.signal;
    const stop = () => inner.abort();
    if (outer?.aborted) stop();
    outer?.addEventListener('abort', stop, { once: true });
    const failedLines: string[] = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      return await runPipeline(commands, {
        ...runOptions,
        signal: inner.signal,
        onStderrLine: (line) => {
          runOptions.onStderrLine?.(line);
          if (!failure.test(line)) return;
          failedLines.push(line);
          // A moment for the command to exit by itself, so its own exit status is reported.
          timer ??= setTimeout(stop, 300);
        },
      });
    } catch (error) {
      if (error instanceof Cancelled && failedLines.length > 0 && !outer?.aborted) {
        const cmd = describe(last === 'restic' ? restic : (after.at(-1) as Command));
        throw this.typed(new ExecError(cmd, 1, undefined, failedLines.join('\n').slice(-400)));
      }
      throw error instanceof ExecError ? this.typed(error) : error;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', stop);
    }
  }

  /** Snapshots of this repository carrying every tag given, oldest first. */
  async snapshots(tags: readonly string[], signal?: AbortSignal): Promise<Snapshot[]> {
    const { stdout } = await this.run(['snapshots', '--json', '--tag', tags.join(',')], { signal });
    return (JSON.parse(stdout || '[]') as Snapshot[] | null) ?? [];
  }

  /**
   * Every stored file of the snapshots carrying `tag`, in one `restic find`: its snapshot's id,
   * its name (see {@link snapshotName}) and its restored size.
   */
  async files(
    tag: string,
    signal?: AbortSignal,
  ): Promise<{ snapshot: string; name: string; size: number }[]> {
    const { stdout } = await this.run(['find', '--json', '--tag', tag, '*'], { signal });
    const results = (JSON.parse(stdout || '[]') ?? []) as {
      snapshot?: string;
      matches?: { path: string; type: string; size?: number }[];
    }[];
    return results.flatMap((result) =>
      (result.matches ?? [])
        .filter((match) => match.type === 'file')
        .map((match) => ({
          snapshot: result.snapshot ?? '',
          name: match.path.replace(/^\//, ''),
          size: match.size ?? 0,
        })),
    );
  }

  /** Maps a failed restic run to the typed error its stderr shows, else returns it unchanged. */
  typed(error: ExecError): Error {
    const text = error.stderrTail;
    const what = `datastore ${this.target.id}`;
    if (/wrong password or no key found/i.test(text)) {
      return new DatastoreAuthFailed(`wrong RESTIC_PASSWORD for ${what}`, { cause: error });
    }
    if (/repository is already locked|unable to create lock/i.test(text)) {
      return new DatastoreLocked(
        `${what}: the repository of ${this.target.jobId === undefined ? `VM ${this.vmId}` : `backup job ${this.target.jobId}`} is locked by another operation`,
        {
          cause: error,
        },
      );
    }
    const ssh = sshFailure(text, what, error);
    if (ssh) return ssh;
    if (/unable to start the sftp session|ssh command exited/i.test(text)) {
      return new DatastoreUnreachable(`${what} is unreachable: ${text.split('\n').at(-1)}`, { cause: error });
    }
    if (/Is there a repository at the following location|unable to open config file/i.test(text)) {
      return new BackupNotFound(`${what} holds no backups of VM ${this.vmId} (no restic repository)`, {
        cause: error,
        repositoryMissing: true,
      });
    }
    if (/no snapshot found|no matching ID found|no matching snapshot/i.test(text)) {
      return new BackupNotFound(`${what}: backup of VM ${this.vmId} not found`, { cause: error });
    }
    return error;
  }
}

/** Repository location and global options from the datastore's attributes. */
export function repoArgs(target: DatastoreTarget, vmId: number): { location: string; args: string[] } {
  const a = target.attributes;
  const path = repositoryPath(target, vmId);
  const args: string[] = [];
  let location = path;
  if (a.RESTIC_SFTP_SERVER) {
    const server = parseServer(a.RESTIC_SFTP_SERVER, a.RESTIC_SFTP_USER);
    const host = server.host.includes(':') ? `[${server.host}]` : server.host;
    location = `sftp:${server.user ? `${server.user}@` : ''}${host}:${path}`;
    // ONE option value: restic splits it into ssh's argv itself (see joinCommand for the quoting).
    const sftpCommand = joinCommand(['ssh', ...sshOptions(server), server.host, '-s', 'sftp']);
    args.push('-o', `sftp.command=${sftpCommand}`);
    if (a.RESTIC_CONNECTIONS) args.push('-o', `sftp.connections=${a.RESTIC_CONNECTIONS}`);
  }
  args.unshift('-r', location);
  if (a.RESTIC_COMPRESSION) args.push('--compression', a.RESTIC_COMPRESSION);
  if (a.RESTIC_BWLIMIT) args.push('--limit-upload', a.RESTIC_BWLIMIT, '--limit-download', a.RESTIC_BWLIMIT);
  return { location, args };
}

/** The file a Lifeboat snapshot stores: its one path, without the leading `/`. */
export function snapshotName(snapshot: Snapshot): string {
  return (snapshot.paths[0] ?? '').replace(/^\//, '');
}

/** The value of a snapshot's `<key>:<value>` tag (`vm`, `image`, `backup`), if it has one. */
export function tagValue(snapshot: Snapshot, key: string): string | undefined {
  return snapshot.tags?.find((t) => t.startsWith(`${key}:`))?.slice(key.length + 1);
}

/**
 * The snapshots of one Lifeboat backup (one per stored file, the template last), by file name.
 * The backup is complete when it holds the template ({@link isComplete}).
 */
export interface Group {
  snapshots: Snapshot[];
  byName: Map<string, Snapshot>;
}

export function groupOf(snapshots: Snapshot[]): Group {
  return { snapshots, byName: new Map(snapshots.map((s) => [snapshotName(s), s] as const)) };
}

/** Whether a backup was stored to its end: its template, written last, is there. */
export function isComplete(group: Group): boolean {
  return group.byName.has(TEMPLATE_NAME);
}

/** Snapshots grouped into backups by their `backup:<uuid>` tag (untagged ones left out). */
export function backupGroups(snapshots: readonly Snapshot[]): Map<string, Group> {
  const byBackup = new Map<string, Snapshot[]>();
  for (const s of snapshots) {
    const id = tagValue(s, 'backup');
    if (id) byBackup.set(id, [...(byBackup.get(id) ?? []), s]);
  }
  return new Map([...byBackup].map(([id, group]) => [id, groupOf(group)] as const));
}
