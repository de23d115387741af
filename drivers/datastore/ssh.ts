/**
 * The ssh side shared by the restic (sftp backend) and rsync drivers: how ssh is invoked, how its
 * failures read, and the capacity of a remote filesystem: through the sftp protocol first (the
 * backup server may allow only sftp and rsync), else `df` over ssh.
 */
import { REMOTE_PATH } from '#core/datastore-attributes.ts';
import { ValidationError } from '#core/errors.ts';
import { type Command, ExecError, run } from '../exec.ts';
import type { OperationContext } from './driver.ts';
import { DatastoreAuthFailed, DatastoreUnreachable, RemoteCommandRefused } from './errors.ts';

/** A server from a `host` or `host:port` attribute (IPv6 in brackets). */
export interface Server {
  host: string;
  port?: number;
  user?: string;
}

/** Splits `host`, `host:port`, `[v6]` or `[v6]:port`. */
export function parseServer(value: string, user?: string): Server {
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(value);
  const [host, port] = v6 ? [v6[1], v6[2]] : value.split(/:(?=\d+$)/);
  // A leading dash would make ssh read the host as an option (-oProxyCommand=...).
  const valid = v6 ? /^[0-9A-Fa-f:.]+$/ : /^[A-Za-z0-9][A-Za-z0-9.-]*$/;
  if (!host || !valid.test(host)) throw new ValidationError(`not a host or host:port: "${value}"`);
  const server: Server = { host };
  if (port !== undefined) server.port = Number(port);
  if (user) server.user = user;
  return server;
}

/** The host as it appears in `host:path` remote specs (brackets kept for IPv6). */
export function remoteHost(server: Server): string {
  return server.host.includes(':') ? `[${server.host}]` : server.host;
}

/**
 * ssh's arguments before the host. The configuration file is the runner's `LIFEBOAT_SSH_CONFIG`
 * (keys, known hosts), so hosts and tests never touch the user's own ssh files. BatchMode: a
 * missing key fails at once instead of waiting for a password prompt nobody answers.
 */
export function sshOptions(server: Server, env: NodeJS.ProcessEnv = process.env): string[] {
  const args: string[] = [];
  if (env.LIFEBOAT_SSH_CONFIG) args.push('-F', env.LIFEBOAT_SSH_CONFIG);
  if (server.port !== undefined) args.push('-p', String(server.port));
  if (server.user) args.push('-l', server.user);
  args.push('-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20');
  return args;
}

/**
 * Joins arguments into one command string for tools that split it themselves (restic's
 * `sftp.command`, rsync's `-e`). restic 0.14 ends a word at a quote and treats a backslash as a
 * separator, so the only safe quoting both understand is a whole word in double quotes.
 */
export function joinCommand(args: readonly string[]): string {
  return args
    .map((arg) => {
      if (/^[^\s"'\\]+$/.test(arg)) return arg;
      if (/["\\]/.test(arg) || arg === '')
        throw new ValidationError(`cannot pass "${arg}" in an ssh command string`);
      return `"${arg}"`;
    })
    .join(' ');
}

const UNREACHABLE =
  /connection refused|no route to host|could not resolve hostname|name or service not known|connection timed out|network is unreachable|connection reset|operation timed out|kex_exchange_identification/i;
const AUTH =
  /permission denied \((?:publickey|password|keyboard|gssapi|hostbased)|host key verification failed|too many authentication failures/i;

/**
 * Maps an ssh failure seen in a tool's stderr to a typed error, or undefined when the text shows
 * none. `what` names the datastore in the message ("datastore 100").
 */
export function sshFailure(stderr: string, what: string, cause: unknown): Error | undefined {
  if (UNREACHABLE.test(stderr)) {
    return new DatastoreUnreachable(`${what} is unreachable: ${lastLine(stderr, UNREACHABLE)}`, { cause });
  }
  if (AUTH.test(stderr)) {
    return new DatastoreAuthFailed(`${what} refused the ssh login: ${lastLine(stderr, AUTH)}`, { cause });
  }
  return undefined;
}

function lastLine(text: string, pattern: RegExp): string {
  const lines = text.split('\n').filter((line) => pattern.test(line));
  return (lines.at(-1) ?? text).trim();
}

/** Size and free bytes of a filesystem. */
export interface FilesystemSpace {
  totalBytes: number;
  freeBytes: number;
}

/**
 * `path` as it may reach sftp's batch parser or a remote shell: of the kind a checked BASE_PATH
 * is (core/datastore-attributes.ts), checked again here where it is used.
 */
function remotePath(path: string): string {
  if (!REMOTE_PATH.test(path)) throw new ValidationError(`not a path a datastore may have: "${path}"`);
  return path;
}

/** `path`, then each of its parent folders up to `/`: the deepest existing one is measured. */
function selfAndParents(path: string): string[] {
  const candidates: string[] = [];
  for (let p = remotePath(path); p !== ''; p = p.slice(0, p.lastIndexOf('/'))) candidates.push(p);
  candidates.push('/');
  return candidates;
}

/** sftp's arguments for `server`: ssh's, with -P for the port and `User=` for -l. */
function sftpArgs(server: Server): string[] {
  const sshArgs = sshOptions(server);
  const args: string[] = [];
  for (let i = 0; i < sshArgs.length; i++) {
    const arg = sshArgs[i] as string;
    if (arg === '-p') args.push('-P', sshArgs[++i] as string);
    else if (arg === '-l') args.push('-o', `User=${sshArgs[++i]}`);
    else args.push(arg);
  }
  return args;
}

/** Runs ssh or sftp to its end (60 s at most); an ssh failure in its stderr comes back typed. */
async function overSsh(command: Command, what: string, ctx: OperationContext, input?: string) {
  try {
    return (await run(command, { input, signal: ctx.signal, timeoutMs: 60_000 })).stdout;
  } catch (error) {
    if (error instanceof ExecError) throw sshFailure(error.stderrTail, what, error) ?? error;
    throw error;
  }
}

/** Runs an sftp batch (each line prefixed `-`: a failing command does not end it); its stdout. */
function sftpBatch(server: Server, lines: readonly string[], what: string, ctx: OperationContext) {
  const batch = `${lines.map((l) => `-${l}`).join('\n')}\n`;
  return overSsh(
    { file: 'sftp', args: [...sftpArgs(server), '-b', '-', remoteHost(server)] },
    what,
    ctx,
    batch,
  );
}

/**
 * Size and free bytes of the filesystem holding `path` on the server through `df -Pk` over ssh,
 * for a server account with a shell but no sftp (or no statvfs extension): one ssh
 * call per folder, up from `path` while df says the folder is missing; any other failure (no
 * shell, no df) would be the same for every parent and ends the walk at once.
 */
export async function sshDfSpace(
  server: Server,
  path: string,
  what: string,
  ctx: OperationContext = {},
): Promise<FilesystemSpace> {
  let missing: unknown;
  for (const candidate of selfAndParents(path)) {
    const args = [...sshOptions(server), remoteHost(server), 'df', '-Pk', '--', candidate];
    try {
      return parsePosixDf(await overSsh({ file: 'ssh', args }, what, ctx));
    } catch (error) {
      if (!(error instanceof ExecError && /No such file or directory/.test(error.stderrTail))) throw error;
      missing = error;
    }
  }
  throw missing;
}

/** Hashing tools tried on the server, fastest first (openssl uses the CPU's SHA instructions). */
const REMOTE_HASHERS: readonly (readonly string[])[] = [['openssl', 'dgst', '-sha256', '-r'], ['sha256sum']];
/** A line of either: `<hex> *<path>` (openssl -r) or `<hex>  <path>` (sha256sum). */
const SUM_LINE = /^([0-9a-f]{64}) [ *](.+)$/;

/**
 * The sums of `sha256sum` or `openssl dgst -sha256 -r` output (and of a `SHA256SUMS` file) by
 * path; a line of any other form is left out.
 */
export function parseSumLines(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = SUM_LINE.exec(line);
    if (m) sums.set(m[2] as string, m[1] as string);
  }
  return sums;
}

/**
 * sha256 of files on the server, computed there, in one ssh call: `openssl dgst -sha256 -r`,
 * or coreutils' `sha256sum` where openssl is missing (exit 127). The paths reach a remote shell,
 * so each is checked here, where it is used (REMOTE_PATH: nothing a shell would interpret). No
 * time limit: it reads whole disks; `ctx.signal` stops it. Answers each path's sum; a path the
 * tool did not hash is absent. An ssh failure comes back typed; a server that runs no command
 * for us (a forced command: rsync only), or has neither tool, as RemoteCommandRefused; a failing
 * tool as its ExecError.
 */
export async function remoteSha256(
  server: Server,
  paths: readonly string[],
  what: string,
  ctx: OperationContext = {},
): Promise<Map<string, string>> {
  const checked = paths.map(remotePath);
  let missing: unknown;
  for (const hasher of REMOTE_HASHERS) {
    const args = [...sshOptions(server), remoteHost(server), ...hasher, '--', ...checked];
    try {
      const { stdout } = await run({ file: 'ssh', args }, { signal: ctx.signal });
      return parseSumLines(stdout);
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      const typed = sshFailure(error.stderrTail, what, error);
      if (typed) throw typed;
      if (error.exitCode !== 127) throw await refusedOr(server, error, what, ctx);
      missing = error;
    }
  }
  // A shell that has neither tool hashes nothing for us, as a forced command would not: the
  // callers turn to what rsync can do there (no probe needed, the shell has answered).
  const stderr = (missing as ExecError).stderrTail.trim();
  throw new RemoteCommandRefused(
    `${what}: the backup server has no sha256 tool (openssl, sha256sum)${stderr ? `: ${stderr}` : ''}`,
    { cause: missing },
  );
}

const PROBE = 'lifeboat-remote-command';

/**
 * Why a remote command failed: `failure` itself when the server runs our commands (one `echo`
 * over ssh answers), else RemoteCommandRefused. Asked only after a failure, so a server with a
 * shell pays nothing; a forced command refuses, or answers with anything but the echo.
 */
async function refusedOr(server: Server, failure: ExecError, what: string, ctx: OperationContext) {
  const args = [...sshOptions(server), remoteHost(server), 'echo', PROBE];
  const answer = await overSsh({ file: 'ssh', args }, what, ctx).catch((error: unknown) => {
    if (error instanceof ExecError) return undefined;
    throw error;
  });
  if (answer?.trim() === PROBE) return failure;
  return new RemoteCommandRefused(
    `${what}: the backup server runs no command but its own (${failure.stderrTail.trim() || `exit ${failure.exitCode}`})`,
    { cause: failure },
  );
}

/** What a monitor measures of a datastore's folder on an ssh server; null where unknown (never 0). */
export interface RemoteMeasure {
  space: FilesystemSpace | null;
  /** Bytes of the restic repositories' files, when asked for. */
  repositoryBytes: number | null;
}

/** The files of each restic repository under the base: config; keys, index, snapshots; packs. */
const RESTIC_GLOBS = ['*/config', '*/*/*', '*/data/*/*'];
/** `ls -ln` of OpenSSH's sftp: `-rw-r--r-- ? 0 0 1000 Dec  6 12:26 /base/1/data/ab/abc`. */
const SFTP_LONG_LISTING = /^-\S{9}\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+\S+\s+(.+)$/;

/**
 * Measures `base` on the server in one sftp session: the space of its filesystem through the
 * sftp protocol's statvfs extension (`df` of OpenSSH's sftp client, of the deepest existing
 * folder of `base`), and with `repositories` the bytes of the restic repositories' files in the
 * folders it accepts (one listing by glob). Space sftp cannot tell (no sftp subsystem, no statvfs)
 * comes from `df` over ssh ({@link sshDfSpace}); else it is null, as are bytes sftp cannot list:
 * an rsync-only account sees neither. Unreachable, refused, cancelled and a bad path throw.
 */
export async function measureRemote(
  server: Server,
  base: string,
  what: string,
  ctx: OperationContext = {},
  repositories?: (name: string) => boolean,
): Promise<RemoteMeasure> {
  const dfLines = selfAndParents(base).map((p) => `df ${p}`);
  const lsLines = repositories ? RESTIC_GLOBS.map((glob) => `ls -ln ${base}/${glob}`) : [];
  const stdout = await unknownUnlessFatal(ctx, () => sftpBatch(server, [...dfLines, ...lsLines], what, ctx));
  // sftp echoes each command (`sftp> -ls ...`): df's rows come before the first ls, the listing after.
  const cut = stdout !== null && lsLines[0] ? stdout.indexOf(`sftp> -${lsLines[0]}`) : -1;
  const dfOut = cut < 0 ? (stdout ?? '') : (stdout ?? '').slice(0, cut);
  const space =
    (await unknownUnlessFatal(ctx, () => parseSftpDf(dfOut))) ??
    (await unknownUnlessFatal(ctx, () => sshDfSpace(server, base, what, ctx)));
  const repositoryBytes =
    repositories && stdout !== null && cut >= 0
      ? await unknownUnlessFatal(ctx, () =>
          sumListing(stdout.slice(cut), base, repositories, SFTP_LONG_LISTING),
        )
      : null;
  return { space, repositoryBytes };
}

/** `measure`'s answer, or null when it failed in a way that leaves one figure unknown. */
async function unknownUnlessFatal<T>(
  ctx: OperationContext,
  measure: () => T | Promise<T>,
): Promise<T | null> {
  try {
    return await measure();
  } catch (error) {
    if (endsMeasuring(error, ctx)) throw error;
    return null;
  }
}

/**
 * Whether a failed measure ends the monitor (the server unreachable, the login refused, the
 * operation cancelled, a path refused before anything ran) rather than leave one figure unknown.
 */
function endsMeasuring(error: unknown, ctx: OperationContext): boolean {
  return (
    Boolean(ctx.signal?.aborted) ||
    error instanceof ValidationError ||
    error instanceof DatastoreUnreachable ||
    error instanceof DatastoreAuthFailed
  );
}

/**
 * Sums the sizes of the regular files of a long listing (`pattern`: size then path) that lie in
 * a repository folder directly under `base` (relative paths are taken as relative to it).
 */
export function sumListing(
  listing: string,
  base: string,
  isRepository: (name: string) => boolean,
  pattern: RegExp,
): number {
  let sum = 0;
  for (const line of listing.split('\n')) {
    const m = pattern.exec(line);
    if (!m) continue;
    const path = (m[2] as string).startsWith(`${base}/`)
      ? (m[2] as string).slice(base.length + 1)
      : (m[2] as string);
    const top = path.split('/')[0] ?? '';
    if (path.includes('/') && isRepository(top)) sum += byteCount(m[1] as string);
  }
  if (!Number.isSafeInteger(sum)) throw new Error(`listing sums to no exact byte count (${sum})`);
  return sum;
}

/**
 * A byte count read from the server's output: `digits` in units of `unit` bytes. The server is
 * untrusted: a figure no exact number holds throws (the measure is then unknown, or the monitor
 * fails) rather than reach the control plane rounded, or as Infinity.
 */
function byteCount(digits: string, unit = 1): number {
  const value = Number(digits) * unit;
  if (!Number.isSafeInteger(value)) {
    throw new Error(`not a byte count: ${digits.slice(0, 40)}${unit === 1 ? '' : ` x ${unit}`}`);
  }
  return value;
}

/** Reads the first table row of sftp's `df` output (KiB: Size Used Avail (Root) %Capacity). */
export function parseSftpDf(stdout: string): FilesystemSpace {
  for (const line of stdout.split('\n')) {
    const cols = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+%\s*$/.exec(line);
    if (cols)
      return {
        totalBytes: byteCount(cols[1] as string, 1024),
        freeBytes: byteCount(cols[3] as string, 1024),
      };
  }
  throw new Error(`no df table in sftp output: ${stdout.slice(0, 200)}`);
}

/** Reads the data row of `df -Pk` (Filesystem 1024-blocks Used Available Capacity Mounted-on). */
export function parsePosixDf(stdout: string): FilesystemSpace {
  for (const line of stdout.split('\n')) {
    const cols = /^\S.*?\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+\/.*$/.exec(line);
    if (cols)
      return {
        totalBytes: byteCount(cols[1] as string, 1024),
        freeBytes: byteCount(cols[3] as string, 1024),
      };
  }
  throw new Error(`no df table in df output: ${stdout.slice(0, 200)}`);
}

/**
 * Names of the entries of the folder `path` on the server, by one sftp `ls -1` (restic's
 * repositories under BASE_PATH, for `catalog`); empty when the folder does not exist.
 */
export async function listRemoteFolder(
  server: Server,
  path: string,
  what: string,
  ctx: OperationContext = {},
): Promise<string[]> {
  const stdout = await sftpBatch(server, [`ls -1 ${remotePath(path)}`], what, ctx);
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('sftp>'))
    .map((line) => line.slice(line.lastIndexOf('/') + 1));
}
