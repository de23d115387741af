/**
 * One rsync datastore as seen from the runner: the server, the ssh transport, the user's
 * RSYNC_ARGS, and the rsync calls that list, fetch and delete on the server. No remote commands
 * beyond rsync's own server side: the backup server may allow nothing else.
 */
import { checkRsyncArgs } from '#core/datastore-attributes.ts';
import { ValidationError } from '#core/errors.ts';
import { ExecError, type RunOptions, run } from '../exec.ts';
import type { DatastoreTarget } from './driver.ts';
import { BackupNotFound } from './errors.ts';
import { joinCommand, parseServer, remoteHost, type Server, sshFailure, sshOptions } from './ssh.ts';

/**
 * What every receive ends with, whatever RSYNC_ARGS says (later options win in rsync): a backup
 * server is untrusted, and the runner receives as root. No symlinks, devices, fifos or sockets
 * (skipped, so the file the caller asked for is missing), no owner, group, ACLs or xattrs from
 * the server (not even as root: `--no-super`), no hard links, files 0600 and folders 0700, and
 * one file only (no recursion into a folder served in its place). Checked on rsync 3.2 and later.
 */
export const SAFE_RECEIVE_ARGS: readonly string[] = [
  '--no-links',
  '--no-devices',
  '--no-specials',
  '--no-owner',
  '--no-group',
  '--no-acls',
  '--no-xattrs',
  '--no-hard-links',
  '--no-super',
  '--perms',
  '--chmod=D0700,F0600',
  '--no-recursive',
];

/**
 * The completion marker of a backup folder (a JSON list of its files, with its image id), sent
 * last: a folder without it is an interrupted backup (rsync-driver.ts's header).
 */
export const MARKER = '.complete';
/** The `sha256sum -c` file of a backup folder: each disk's sha256, computed while it was sent. */
export const SUMS = 'SHA256SUMS';

/** One entry of `rsync --list-only`. */
export interface ListEntry {
  /** Its name (with `-r`: its path under the folder listed). */
  name: string;
  size: number;
  isDir: boolean;
  /** A regular file (not a folder, a link or a device). */
  isFile: boolean;
  /** `2026/12/06 12:26:00` as rsync lists it (the server's local time). */
  mtime: string;
}

/** The rsync calls of one datastore. */
export class RsyncRemote {
  readonly server: Server;
  /** RSYNC_ARGS, tokenized and allow-listed (never a transport or file option). */
  readonly userArgs: string[];
  /** `-e <ssh ...>`: OUR transport, never taken from RSYNC_ARGS. */
  private readonly transport: string[];

  constructor(readonly target: DatastoreTarget) {
    const a = target.attributes;
    if (!a.RSYNC_HOST) throw new ValidationError(`datastore ${target.id} has no RSYNC_HOST`);
    this.server = parseServer(a.RSYNC_HOST, a.RSYNC_USER);
    let userArgs: string;
    try {
      userArgs = checkRsyncArgs(a.RSYNC_ARGS || '-aS');
    } catch (error) {
      throw new ValidationError(`datastore ${target.id}: RSYNC_ARGS ${(error as Error).message}`);
    }
    this.userArgs = userArgs.split(' ');
    // The port and user go to ssh, not into `user@host:port` (rsync would read the port as a path).
    this.transport = ['-e', joinCommand(['ssh', ...sshOptions(this.server)])];
  }

  /** Options of a receive: the allow-listed RSYNC_ARGS, then {@link SAFE_RECEIVE_ARGS}. */
  receiveArgs(): string[] {
    return [...this.userArgs, ...SAFE_RECEIVE_ARGS];
  }

  /** `host:<path>` for rsync's command line (rsync 3.2.4+ protects it from the remote shell). */
  spec(path: string): string {
    return `${remoteHost(this.server)}:${path}`;
  }

  /** Runs rsync with the transport and the given arguments; failures come back typed. */
  async rsync(args: readonly string[], options: RunOptions = {}): Promise<string> {
    try {
      return (await run({ file: 'rsync', args: [...this.transport, ...args] }, options)).stdout;
    } catch (error) {
      throw error instanceof ExecError ? this.typed(error) : error;
    }
  }

  /** Entries of a remote folder (without `.`); BackupNotFound with repositoryMissing when absent. */
  async list(dir: string, signal?: AbortSignal): Promise<ListEntry[]> {
    const stdout = await this.rsync(['--list-only', '--no-human-readable', this.spec(`${dir}/`)], { signal });
    return parseListing(stdout).filter((e) => e.name !== '.');
  }

  /** Like {@link list}, but an absent folder lists as empty. */
  async listOrEmpty(dir: string, signal?: AbortSignal): Promise<ListEntry[]> {
    return emptyIfMissing(() => this.list(dir, signal));
  }

  /**
   * Every entry under a remote folder, in one recursive listing, named by its path under it
   * (`63/<hash>/disk.0.raw`, without `.`); an absent folder lists as empty.
   */
  async tree(dir: string, signal?: AbortSignal): Promise<ListEntry[]> {
    return emptyIfMissing(async () => {
      const args = ['--list-only', '-r', '--no-human-readable', this.spec(`${dir}/`)];
      return parseListing(await this.rsync(args, { signal })).filter((e) => e.name !== '.');
    });
  }

  /**
   * Deletes `parent/name` (a file or a whole folder) by syncing an empty local folder onto
   * `parent` with a filter that lets rsync `--delete` only that name. Nothing else is touched.
   */
  async remove(parent: string, name: string, emptyDir: string, options: RunOptions = {}): Promise<void> {
    await this.rsync(
      [
        '-r',
        '--delete',
        `--include=/${name}/***`,
        `--include=/${name}`,
        '--exclude=*',
        `${emptyDir}/`,
        this.spec(`${parent}/`),
      ],
      options,
    );
  }

  /** Maps a failed rsync to a typed error by its stderr, else returns it unchanged. */
  typed(error: ExecError): Error {
    const what = `datastore ${this.target.id}`;
    const ssh = sshFailure(error.stderrTail, what, error);
    if (ssh) return ssh;
    if (error.exitCode === 23 && /No such file or directory/.test(error.stderrTail)) {
      return new BackupNotFound(`${what}: ${lastLine(error.stderrTail)}`, {
        cause: error,
        repositoryMissing: true,
      });
    }
    return error;
  }
}

/** A listing's entries; an absent folder (BackupNotFound, repositoryMissing) as none. */
async function emptyIfMissing(list: () => Promise<ListEntry[]>): Promise<ListEntry[]> {
  try {
    return await list();
  } catch (error) {
    if (error instanceof BackupNotFound && error.repositoryMissing) return [];
    throw error;
  }
}

/** Parses `rsync --list-only` lines: `-rw-r--r--  1048576 2026/11/26 16:20:03 name`. */
export function parseListing(stdout: string): ListEntry[] {
  const entries: ListEntry[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^([dl-])[rwxsStT-]{9}\s+([\d,]+)\s+(\S+\s+\S+)\s+(.+)$/.exec(line);
    if (m)
      entries.push({
        isDir: m[1] === 'd',
        isFile: m[1] === '-',
        size: Number((m[2] as string).replace(/,/g, '')),
        mtime: m[3] as string,
        name: m[4] as string,
      });
  }
  return entries;
}

function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .find((l) => /No such file/.test(l)) ??
    text.trim().split('\n').at(-1) ??
    ''
  );
}
