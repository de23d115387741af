/**
 * The ssh side shared by the restic (sftp backend) and rsync drivers: how ssh is invoked, how its
 * failures read, and the capacity of a remote filesystem through the sftp protocol (no remote
 * commands: the backup server may allow only sftp and rsync).
 */
import { ValidationError } from '#core/errors.ts';
import { ExecError, run } from '../exec.ts';
import type { Capacity, OperationContext } from './driver.ts';
import { DatastoreAuthFailed, DatastoreUnreachable } from './errors.ts';

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

/**
 * Capacity of the filesystem holding `path` on the server, through the sftp protocol's
 * statvfs extension (`df` of OpenSSH's sftp client): the deepest existing folder of `path` is
 * measured. Throws when the server has no sftp subsystem or no statvfs extension.
 */
export async function sftpCapacity(
  server: Server,
  path: string,
  what: string,
  ctx: OperationContext = {},
): Promise<Capacity> {
  const candidates: string[] = [];
  for (let p = path; p !== ''; p = p.slice(0, p.lastIndexOf('/'))) candidates.push(p);
  candidates.push('/');
  // `-df`: a failing df (folder not there yet) does not end the batch.
  const batch = `${candidates.map((p) => `-df ${p}`).join('\n')}\n`;
  const sshArgs = sshOptions(server);
  // sftp takes -P for the port and no -l: rewrite those two.
  const sftpArgs: string[] = [];
  for (let i = 0; i < sshArgs.length; i++) {
    const arg = sshArgs[i] as string;
    if (arg === '-p') sftpArgs.push('-P', sshArgs[++i] as string);
    else if (arg === '-l') sftpArgs.push('-o', `User=${sshArgs[++i]}`);
    else sftpArgs.push(arg);
  }
  try {
    const { stdout } = await run(
      { file: 'sftp', args: [...sftpArgs, '-b', '-', remoteHost(server)] },
      { input: batch, signal: ctx.signal, timeoutMs: 60_000 },
    );
    return parseSftpDf(stdout);
  } catch (error) {
    if (error instanceof ExecError) throw sshFailure(error.stderrTail, what, error) ?? error;
    throw error;
  }
}

/** Reads the first table row of sftp's `df` output (KiB: Size Used Avail (Root) %Capacity). */
export function parseSftpDf(stdout: string): Capacity {
  for (const line of stdout.split('\n')) {
    const cols = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+%\s*$/.exec(line);
    if (cols) {
      return {
        totalBytes: Number(cols[1]) * 1024,
        usedBytes: Number(cols[2]) * 1024,
        freeBytes: Number(cols[3]) * 1024,
      };
    }
  }
  throw new Error(`no df table in sftp output: ${stdout.slice(0, 200)}`);
}
