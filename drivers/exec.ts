/**
 * The one wrapper around execa. Every external tool (virsh, qemu-img, qemu-nbd, nbdcopy, rbd,
 * restic, rsync, ssh) runs through here, so these rules hold everywhere:
 * - argument arrays only, never a shell;
 * - secrets go through `env` (or a 0600 file the caller owns), never argv; error messages carry
 *   the command name and arguments, which therefore must never hold a secret; as a second line
 *   of defence, the values of secret-named `env` variables, the command's `secrets` and URL
 *   passwords are masked in every message, stderr tail included (a tool may echo them);
 * - each child leads its own process group, and cancelling (the AbortSignal) kills the whole
 *   group, so a tool's own children (ssh under restic/rsync) die with it;
 * - a failure is an {@link ExecError} with the exit code, the signal and the tail of stderr;
 * - every group started is announced to {@link ProcessGroupHooks} (per call and process-wide), so
 *   the runner can record it and its successor can stop what a SIGKILLed runner left running.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { execa, type ResultPromise } from 'execa';
import { LifeboatError } from '#core/errors.ts';

/** A command that exited non-zero, was killed, or could not start. */
export class ExecError extends LifeboatError {
  override readonly name: string = 'ExecError';
  constructor(
    readonly cmd: string,
    readonly exitCode: number | undefined,
    readonly signal: string | undefined,
    readonly stderrTail: string,
    options?: { cause?: unknown },
  ) {
    const how = signal
      ? `killed by ${signal}`
      : exitCode === undefined
        ? 'could not start'
        : `exit ${exitCode}`;
    super(`${cmd} failed (${how})${stderrTail ? `: ${stderrTail}` : ''}`, options);
  }
}

/** The command was cancelled through its AbortSignal. */
export class Cancelled extends LifeboatError {
  override readonly name: string = 'Cancelled';
}

export interface Command {
  file: string;
  args: readonly string[];
  /** Extra environment (merged over the runner's own). Secrets go here, never in args. */
  env?: Record<string, string>;
  /** Values to mask in messages besides the secret-named `env` ones (a password the tool reads from a file). */
  secrets?: readonly string[];
}

/**
 * Told about each process group this module starts. Called synchronously: `onSpawn` right after
 * the leader exec'd (its /proc entry already shows the tool), `onExit` once the leader ended.
 * Members the leader leaves behind are not followed. A hook that throws is ignored: recording
 * must never fail a command.
 */
export interface ProcessGroupHooks {
  /** The group `pgid` (its leader's pid) now runs `command`. */
  onSpawn(pgid: number, command: Command): void;
  /** The leader of group `pgid` exited. */
  onExit(pgid: number): void;
}

const watchers = new Set<ProcessGroupHooks>();

/**
 * Announces every process group started from now on in this process to `hooks` (the runner's
 * process registry). Answers the function that stops it.
 */
export function watchProcessGroups(hooks: ProcessGroupHooks): () => void {
  watchers.add(hooks);
  return () => {
    watchers.delete(hooks);
  };
}

export interface RunOptions {
  /** Aborting kills the command's whole process group. */
  signal?: AbortSignal;
  /** Kill the group after this long and fail with ExecError. */
  timeoutMs?: number;
  cwd?: string;
  /** Data written to the first command's stdin. */
  input?: string | Uint8Array;
  /**
   * A file that becomes the first command's stdin: its descriptor is handed to the child, so
   * the bytes never pass through this process (streaming a disk costs no Node CPU).
   */
  inputFile?: string;
  /**
   * With `inputFile` or `input`: the input may be given only once this resolves (a disk being
   * made stable, a backup being verified). The commands start at once, their stdin an open pipe
   * with nothing in it yet (restic opens its repository meanwhile); then `cat` streams the file
   * into that pipe (its descriptor handed over, so the bytes still never pass through this
   * process), or `input` is written. A rejection, or a reader that fails, kills the commands
   * before their input ends, and the call fails with that reason.
   */
  inputAfter?: Promise<unknown>;
  /**
   * With `inputAfter`: the command that reads the file (its stdin, the file's own descriptor)
   * and writes into the first command's pipe; `cat` when not given. A `tee` here copies the
   * bytes to a second reader on their way, without a pipe stage of its own.
   */
  inputThrough?: Command;
  /** Called with each line the last command writes to stderr (progress parsing). */
  onStderrLine?: (line: string) => void;
  /** Called with each line the last command writes to stdout; stdout is then not buffered. */
  onStdoutLine?: (line: string) => void;
  /** Told about this call's process groups, besides the process-wide {@link watchProcessGroups}. */
  processGroups?: ProcessGroupHooks;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const STDERR_TAIL = 400;
/** How a producer says the reader of its output went away (a pipe or, from Node, a socket pair). */
const BROKEN_PIPE = /broken pipe|connection reset by peer|EPIPE|ECONNRESET/i;

/** Runs one command to its end. */
export function run(command: Command, options: RunOptions = {}): Promise<RunResult> {
  return runPipeline([command], options);
}

/**
 * Runs `a | b | ...` without a shell: each command's stdout feeds the next one's stdin. Resolves
 * with the last command's output once every command has exited 0; otherwise rejects with the
 * ExecError of the first command that failed. A command whose consumer exited before it did is
 * cut off: its failure (EPIPE, SIGPIPE, connection reset) is a consequence and not reported; the
 * consumer's own exit status tells whether that early end was a failure.
 */
export async function runPipeline(
  commands: readonly Command[],
  options: RunOptions = {},
): Promise<RunResult> {
  if (commands.length === 0) throw new Error('runPipeline needs at least one command');
  const children: ResultPromise[] = [];
  const stderrTails = new Map<ResultPromise, string>();
  const cutOff = new Set<ResultPromise>();
  const exited = new Set<ResultPromise>();
  /** Producers whose consumer has exited. */
  const consumerGone = new Set<ResultPromise>();
  /** Producers still running, as far as this process saw, when their consumer exited. */
  const consumerFirst = new Set<ResultPromise>();
  /** The reader that feeds a gated `inputFile` (`inputThrough`, `cat`), once it started. */
  let feeder: ResultPromise | undefined;
  const killAll = (signal: NodeJS.Signals) => {
    for (const child of [...children, ...(feeder ? [feeder] : [])]) killGroup(child, signal);
  };
  const onAbort = () => killAll('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let inputHandle: FileHandle | undefined;
  const timer = options.timeoutMs ? setTimeout(() => killAll('SIGKILL'), options.timeoutMs) : undefined;
  try {
    if (options.signal?.aborted) throw new Cancelled(`${describe(commands[0] as Command)} was cancelled`);
    const gated =
      (options.inputFile !== undefined || options.input !== undefined) && options.inputAfter !== undefined;
    if (options.inputFile !== undefined && !gated) inputHandle = await open(options.inputFile, 'r');
    // execa's types list only a few descriptor numbers; any open descriptor works at run time.
    const firstStdin = inputHandle
      ? (inputHandle.fd as 3)
      : options.input === undefined && !gated
        ? 'ignore'
        : 'pipe';
    commands.forEach((command, index) => {
      const first = index === 0;
      const last = index === commands.length - 1;
      const previous = children[index - 1];
      const child = execa(command.file, [...command.args], {
        env: command.env,
        extendEnv: true,
        cwd: options.cwd,
        detached: true,
        reject: false,
        stripFinalNewline: false,
        encoding: last ? 'utf8' : 'buffer',
        buffer: { stdout: last && !options.onStdoutLine, stderr: false },
        // The producer's pipe itself (its descriptor handed over): the bytes go from one tool
        // to the next without passing through this process (a disk streamed costs no Node CPU).
        stdin: first ? firstStdin : (previous?.stdout ?? 'pipe'),
        stdout: 'pipe',
        stderr: 'pipe',
        ...(first && options.input !== undefined && !gated ? { input: options.input } : {}),
      });
      announce(child, command, options.processGroups);
      child.nodeChildProcess.once('exit', () => exited.add(child));
      if (previous?.stdout) {
        // Our copy of the read end goes: the consumer holds its own, so when it exits early the
        // producer gets EPIPE/SIGPIPE instead of blocking forever on a pipe nobody drains.
        previous.stdout.destroy();
        // Its failure may then be a consequence, not a cause (decided once all have ended).
        child.nodeChildProcess.once('exit', () => {
          if (!exited.has(previous)) consumerFirst.add(previous);
          consumerGone.add(previous);
        });
      }
      // A downstream consumer that exits early must not crash us with EPIPE.
      child.stdin?.on('error', () => {});
      watchStderr(child, stderrTails, last ? options.onStderrLine : undefined);
      if (last && options.onStdoutLine) watchLines(child.stdout, options.onStdoutLine);
      children.push(child);
    });
    let gateFailure: { reason: unknown } | undefined;
    const consumer = children[0];
    /** The reader of a gated file, once started: killed with the commands, announced as they are. */
    const onFeeder = (started: ResultPromise, command: Command) => {
      feeder = started;
      announce(started, command, options.processGroups);
      // Aborted or timed out while the gate was still closed: the feeder goes too.
      if (options.signal?.aborted) killGroup(started, 'SIGTERM');
    };
    const feed = (to: ResultPromise, after: Promise<unknown>) =>
      options.inputFile === undefined
        ? writeWhenReady(to, options.input ?? '', after)
        : feedWhenReady(to, options.inputFile, after, options.inputThrough ?? CAT, onFeeder);
    const feeding =
      gated && consumer && options.inputAfter
        ? feed(consumer, options.inputAfter).catch((reason: unknown) => {
            gateFailure = { reason };
            killAll('SIGTERM');
          })
        : undefined;
    const results = await Promise.all(children);
    await feeding;
    // Every command has ended: this process's end of the first one's pipe goes too.
    consumer?.stdin?.destroy();
    // Cancelled: the feeder killed with the commands is a consequence, the cancel the reason.
    if (options.signal?.aborted) throw new Cancelled(`${describe(commands[0] as Command)} was cancelled`);
    if (gateFailure) throw gateFailure.reason;
    // A producer is cut off (its failure not reported) when it failed on the closed pipe, or
    // when its consumer failed first: that failure is reported instead. Never only because its
    // consumer's exit was seen first: the order exits are seen in is not the order they came
    // in, and a producer that failed on its own (a disk read error) with a consumer that ended
    // well on the short input must fail the pipeline, or a cut stream passes for a whole one.
    for (const child of consumerGone) {
      const index = children.indexOf(child);
      const consumer = results[index + 1];
      const consumerFailed = consumer !== undefined && (consumer.failed || consumer.exitCode !== 0);
      if (
        BROKEN_PIPE.test(stderrTails.get(child) ?? '') ||
        results[index]?.signal === 'SIGPIPE' ||
        (consumerFirst.has(child) && consumerFailed)
      )
        cutOff.add(child);
    }
    const failures = results
      .map((result, index) => ({ result, index }))
      .filter(
        ({ result, index }) =>
          (result.failed || result.exitCode !== 0) && !cutOff.has(children[index] as ResultPromise),
      );
    const firstReal = failures.find(({ result }) => result.signal !== 'SIGPIPE') ?? failures[0];
    if (firstReal) {
      const { result, index } = firstReal;
      const child = children[index] as ResultPromise;
      const command = commands[index] as Command;
      throw new ExecError(
        describe(command),
        result.exitCode,
        result.signal ?? undefined,
        maskSecrets((stderrTails.get(child) ?? '').trim(), command),
        // execa's error repeats the command line and stderr: kept only with the secrets masked.
        { cause: maskedCause(result.cause, command) },
      );
    }
    const lastResult = results[results.length - 1];
    return {
      stdout: String(lastResult?.stdout ?? ''),
      stderr: (stderrTails.get(children.at(-1) as ResultPromise) ?? '').trim(),
    };
  } finally {
    await inputHandle?.close();
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** Waits for `after`, then writes `input` into the consumer's stdin and ends it (left open when `after` rejects). */
async function writeWhenReady(consumer: ResultPromise, input: string | Uint8Array, after: Promise<unknown>) {
  await after;
  const stdin = consumer.stdin;
  if (!stdin || stdin.destroyed || stdin.writableEnded) return;
  stdin.end(input);
}

/** How long a feeder cut off by a broken pipe waits to see its consumer end. */
const CONSUMER_END_MS = 2000;

/** Whether `child` ends (well or not) within `ms`. */
async function endsWithin(child: ResultPromise, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    child.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return ended;
}

/** The default reader of a gated input file. */
const CAT: Command = { file: 'cat', args: [] };

/**
 * Waits for `after`, then runs `through` (`cat`) with the file as its stdin and the consumer's
 * stdin (the first command's pipe) as its stdout. This process keeps its own end of that pipe
 * open until the feeder has ended well: one that fails halfway (a read error) leaves the
 * consumer waiting for more, so the caller kills it before it could take a cut input for a whole
 * one; only then does the input end. Throws (the pipe left open) when the file cannot be read. A
 * consumer that stops reading is no error here (EPIPE or SIGPIPE): its own exit status tells.
 */
async function feedWhenReady(
  consumer: ResultPromise,
  path: string,
  after: Promise<unknown>,
  through: Command,
  started: (feeder: ResultPromise, command: Command) => void,
): Promise<void> {
  await after;
  const stdin = consumer.stdin;
  // The consumer already ended (a failed repository open): nothing to feed.
  if (!stdin || stdin.destroyed || stdin.writableEnded) return;
  const file = await open(path, 'r');
  try {
    const feeder = execa(through.file, [...through.args], {
      env: through.env,
      extendEnv: true,
      detached: true,
      reject: false,
      // Both descriptors are handed over as they are (execa passes a lone fd or stream through).
      stdin: file.fd as 3,
      stdout: stdin,
      stderr: 'pipe',
      encoding: 'utf8',
    });
    started(feeder, through);
    const result = await feeder;
    if (!result.failed && result.exitCode === 0) {
      stdin.end();
      return;
    }
    const stderr = String(result.stderr ?? '').trim();
    // Cut off: by the consumer's end (its own status tells), or by another output of the feeder
    // (a tee's second reader gone) while the consumer still waits, which must not end its input.
    if (
      (result.signal === 'SIGPIPE' || BROKEN_PIPE.test(stderr)) &&
      (await endsWithin(consumer, CONSUMER_END_MS))
    ) {
      return;
    }
    throw new ExecError(
      `${describe(through)} < ${path}`,
      result.exitCode,
      result.signal ?? undefined,
      maskSecrets(stderr.slice(-STDERR_TAIL), through),
    );
  } finally {
    await file.close();
  }
}

/** The command as it appears in messages and logs: file and arguments, secrets masked (see top). */
export function describe(command: Command): string {
  return maskSecrets([command.file, ...command.args].join(' '), command);
}

/** Names of environment variables whose values are secrets. */
const SECRET_ENV = /PASSWORD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$/i;
/** Shorter values are not masked: masking `1` would shred every message. */
const MIN_SECRET_LENGTH = 4;

/** `text` with the command's secrets and any URL password (`scheme://user:PASSWORD@`) replaced by `***`. */
export function maskSecrets(text: string, command: Pick<Command, 'env' | 'secrets'>): string {
  const values = [
    ...(command.secrets ?? []),
    ...Object.entries(command.env ?? {})
      .filter(([name]) => SECRET_ENV.test(name) && !name.endsWith('_FILE') && !name.endsWith('_COMMAND'))
      .map(([, value]) => value),
  ].filter((value) => value.length >= MIN_SECRET_LENGTH);
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/@]+@/gi, '$1:***@');
  // Longest first, so a secret that contains another is masked whole.
  for (const value of values.sort((a, b) => b.length - a.length)) out = out.split(value).join('***');
  return out;
}

/** execa's failure (its message holds the command line and output) with the secrets masked. */
function maskedCause(cause: unknown, command: Command): unknown {
  if (!(cause instanceof Error)) return cause;
  const { code } = cause as NodeJS.ErrnoException;
  return Object.assign(new Error(maskSecrets(cause.message, command)), {
    name: cause.name,
    ...(code !== undefined && { code }),
  });
}

/** Tells the hooks about `child`'s group now and when its leader exits (never throws). */
function announce(child: ResultPromise, command: Command, own: ProcessGroupHooks | undefined): void {
  const pgid = child.pid;
  // No pid: the tool could not start, so there is no group to record.
  if (pgid === undefined) return;
  const hooks = own ? [own, ...watchers] : [...watchers];
  if (hooks.length === 0) return;
  for (const hook of hooks) quietly(() => hook.onSpawn(pgid, command));
  void child.finally(() => {
    for (const hook of hooks) quietly(() => hook.onExit(pgid));
  });
}

function quietly(call: () => void): void {
  try {
    call();
  } catch {
    // A recording failure must not fail the command (the hook logs its own problems).
  }
}

function killGroup(child: ResultPromise, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

function watchStderr(
  child: ResultPromise,
  tails: Map<ResultPromise, string>,
  onLine?: (line: string) => void,
): void {
  tails.set(child, '');
  child.stderr?.on('data', (chunk: Buffer | string) => {
    const text = (tails.get(child) ?? '') + chunk.toString();
    tails.set(child, text.length > STDERR_TAIL ? text.slice(-STDERR_TAIL) : text);
  });
  if (onLine) watchLines(child.stderr, onLine);
}

function watchLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.on('data', (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split(/\r?\n|\r/);
    pending = lines.pop() ?? '';
    for (const line of lines) if (line) onLine(line);
  });
  stream.on('end', () => {
    if (pending) onLine(pending);
  });
}
