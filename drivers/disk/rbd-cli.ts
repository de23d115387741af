/**
 * The `rbd` command line for the rbd disk driver: image and snapshot names checked against strict
 * patterns before they reach an argument array (they come from a VM's XML and from stored
 * backups: untrusted), every call under a deadline (a Ceph cluster in trouble hangs instead of
 * failing) turned into {@link CephTimeout}, and other failures into {@link CephFailed}.
 *
 * The cluster is the host's: `CEPH_CONF` when set, else ceph's own default (/etc/ceph/ceph.conf);
 * a driver may be given another config file (tests). The client id is the disk's
 * `<auth username>` (absent: ceph's default, `admin`); its key comes from the keyring the config
 * names, never from Lifeboat.
 */
import { ValidationError } from '#core/errors.ts';
import { Cancelled, type Command, ExecError, run } from '../exec.ts';
import { CephFailed, CephTimeout } from './errors.ts';

/** A pool, namespace, image or client id: starts with a letter or digit, then letters, digits, `_ . -`. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** Our snapshots: `lifeboat-` then letters, digits, `_ . -`. */
export const SNAPSHOT_PREFIX = 'lifeboat-';
const SNAPSHOT = /^lifeboat-[A-Za-z0-9_.-]{1,100}$/;

/** Default deadline of one rbd call that moves no disk data (info, snap create/rm/ls). */
export const RBD_TIMEOUT_MS = 120_000;

/** One rbd image: `pool/[namespace/]image`. */
export interface RbdImage {
  pool: string;
  namespace?: string;
  image: string;
}

/** Where the cluster is and who we are to it. */
export interface RbdAccess {
  /** A ceph.conf other than the host's (tests); absent: `CEPH_CONF` or ceph's default. */
  conf?: string;
  /** Deadline of each call that moves no disk data, in ms. */
  timeoutMs?: number;
}

/** Throws ValidationError unless `value` is a strict ceph name (`what` names it in the message). */
export function checkName(value: string, what: string): string {
  if (!NAME.test(value)) {
    throw new ValidationError(
      `${what} "${value.slice(0, 64)}" is not a name Lifeboat accepts (letters, digits, _ . -)`,
    );
  }
  return value;
}

/** True when `name` is of our snapshot names' shape (`lifeboat-` then letters, digits, `_ . -`). */
export function isOurSnapshot(name: string): boolean {
  return SNAPSHOT.test(name);
}

/** Throws ValidationError unless `name` is one of our snapshot names (`lifeboat-...`). */
export function checkSnapshot(name: string): string {
  if (!isOurSnapshot(name)) {
    throw new ValidationError(`snapshot name "${name.slice(0, 64)}" is not a Lifeboat snapshot name`);
  }
  return name;
}

/** Reads a libvirt rbd source name (`pool/image` or `pool/namespace/image`), checked. */
export function parseImage(source: string): RbdImage {
  const parts = source.split('/');
  if (parts.length < 2 || parts.length > 3) {
    throw new ValidationError(
      `rbd source "${source.slice(0, 64)}" is not pool/image or pool/namespace/image`,
    );
  }
  const [pool, a, b] = parts as [string, string, string | undefined];
  return b === undefined
    ? { pool: checkName(pool, 'rbd pool'), image: checkName(a, 'rbd image') }
    : {
        pool: checkName(pool, 'rbd pool'),
        namespace: checkName(a, 'rbd namespace'),
        image: checkName(b, 'rbd image'),
      };
}

/** `pool/[namespace/]image[@snap]`, every part checked again (never starts with `-`). */
export function imageSpec(image: RbdImage, snapshot?: string): string {
  const parts = [checkName(image.pool, 'rbd pool')];
  if (image.namespace !== undefined) parts.push(checkName(image.namespace, 'rbd namespace'));
  parts.push(checkName(image.image, 'rbd image'));
  return `${parts.join('/')}${snapshot === undefined ? '' : `@${checkSnapshot(snapshot)}`}`;
}

/** The rbd tool for one client of one cluster. */
export class Rbd {
  readonly timeoutMs: number;
  constructor(
    readonly access: RbdAccess = {},
    /** The client id (`--id`), from the disk's `<auth username>`; absent: ceph's default. */
    readonly clientId?: string,
  ) {
    if (clientId !== undefined) checkName(clientId, 'ceph client id');
    this.timeoutMs = access.timeoutMs ?? RBD_TIMEOUT_MS;
  }

  /** The same cluster as another client. */
  as(clientId: string | undefined): Rbd {
    return new Rbd(this.access, clientId);
  }

  /** `rbd [--id ID] ...args` as a Command. */
  command(args: readonly string[]): Command {
    return {
      file: 'rbd',
      args: [...(this.clientId === undefined ? [] : ['--id', this.clientId]), ...args],
      ...(this.access.conf === undefined ? {} : { env: { CEPH_CONF: this.access.conf } }),
    };
  }

  /**
   * A Command that streams disk data (`rbd export ... -` into a datastore): it may run for hours,
   * so instead of one deadline, librados gets one per step (connecting, each monitor and each
   * OSD operation), and a cluster that stops answering fails it with ETIMEDOUT.
   */
  streamCommand(args: readonly string[]): Command {
    const seconds = String(Math.max(1, Math.ceil(this.timeoutMs / 1000)));
    const deadlines = ['client_mount_timeout', 'rados_mon_op_timeout', 'rados_osd_op_timeout'].flatMap(
      (option) => [`--${option}`, seconds],
    );
    return this.command([...deadlines, ...args]);
  }

  /** Runs `rbd ...args` to its end, under the deadline; stdout. */
  run(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<string> {
    return this.exec(args, this.command(args), this.timeoutMs, options.signal);
  }

  /**
   * Runs a call that moves disk data (`import`, `import-diff`, `export-diff` into a file, `rm` of
   * an image) to its end: no single deadline fits it, so librados' per step bound it (as
   * {@link streamCommand}'s), and `signal`; stdout.
   */
  transfer(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<string> {
    return this.exec(args, this.streamCommand(args), 0, options.signal);
  }

  private async exec(
    args: readonly string[],
    command: Command,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const started = Date.now();
    try {
      return (await run(command, { signal, ...(timeoutMs > 0 ? { timeoutMs } : {}) })).stdout;
    } catch (error) {
      throw cephError(error, args, timeoutMs, started);
    }
  }

  /** True when `image` exists (`rbd info`; a missing image is no error). */
  async exists(image: RbdImage, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      await this.run(['info', imageSpec(image)], options);
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /** Parsed `--format json` output of `rbd ...args`. */
  async json<T>(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<T> {
    const stdout = await this.run([...args, '--format', 'json'], options);
    try {
      return JSON.parse(stdout) as T;
    } catch (error) {
      throw new CephFailed(`rbd ${args[0] ?? ''} ${args[1] ?? ''}: output is not JSON`, { cause: error });
    }
  }
}

/** The typed error of a failed rbd call: a timeout, a cancel, or the tool's own failure. */
export function cephError(
  error: unknown,
  args: readonly string[],
  timeoutMs: number,
  started: number,
): Error {
  if (error instanceof Cancelled || !(error instanceof ExecError)) return error as Error;
  const what = `rbd ${args.join(' ')}`;
  if (timeoutMs > 0 && error.signal === 'SIGKILL' && Date.now() - started >= timeoutMs - 50) {
    return new CephTimeout(
      `${what} did not answer within ${Math.round(timeoutMs / 1000)} s (is the Ceph cluster reachable, with quorum and space?)`,
      { cause: error },
    );
  }
  return new CephFailed(`${what} failed: ${error.stderrTail || error.message}`, { cause: error });
}

/** True when an rbd failure says the image or snapshot does not exist. */
export function isMissing(error: unknown): boolean {
  return (
    error instanceof CephFailed && /No such file or directory|not found|does not exist/i.test(error.message)
  );
}
