/**
 * The runner's configuration, from command-line flags over environment variables over defaults,
 * validated with zod so a bad value stops the daemon at start with a message naming it.
 *
 * The API endpoint is resolved like the CLI's: `--endpoint`, then `LIFEBOAT_ENDPOINT`, then
 * `${LIFEBOAT_HOME:-~/.lifeboat}/endpoint.json`. The file is read again on every attempt
 * ({@link resolveConnection}), because in local mode the runner starts before `lifeboat local up`
 * has written it. A runner never takes an API token, not even endpoint.json's (the admin's): it
 * acts as its host, with the credential it got by registering with a one-time enrollment token
 * (runner/identity.ts), which comes only from `LIFEBOAT_ENROLL_TOKEN` or a file
 * (`--enroll-token-file`, `LIFEBOAT_ENROLL_TOKEN_FILE`), never from the command line. In AWS,
 * `LIFEBOAT_API_AUTH=iam` signs its requests with the host's IAM Roles Anywhere session instead,
 * as host `LIFEBOAT_HOST_ID` (its certificate's CN), with no token at all.
 */
import { readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { HostPath, PoolName } from '#core/contracts/tasks.ts';
import { ValidationError } from '#core/errors.ts';
import { ApiUnavailable } from './errors.ts';
import { LOCAL_SESSION_URL, parseSessionUrl } from './session-credentials.ts';

/** Where the API is. */
export interface Connection {
  endpoint: string;
}

/** Default of `LIFEBOAT_RESTORE_ROOTS`. */
export const DEFAULT_RESTORE_ROOTS = ['/var/lib/lifeboat/restores'] as const;

const RestoreRoot = HostPath.regex(/^\//, 'must be absolute paths')
  // `/srv/r/` and `/srv/r` are one root; `/` stays itself.
  .transform((p) => p.replace(/\/+$/, '') || '/');

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const RunnerConfig = z.object({
  /** Fixed endpoint; when absent, endpoint.json under {@link RunnerConfig.home}. */
  endpoint: z.url().optional(),
  home: z.string().min(1),
  /** One-time enrollment token (`LIFEBOAT_ENROLL_TOKEN`, never a flag; never logged). */
  enrollToken: z.string().min(1).optional(),
  /** File holding the enrollment token. */
  enrollTokenFile: z.string().min(1).optional(),
  /** Host name this runner registers as (`POST /hosts/register {name}`). */
  hostName: z
    .string()
    .regex(
      /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/,
      'must be a host name (letters, digits, . and -)',
    ),
  /** Journal, work folders and restores live here. */
  stateDir: z.string().regex(/^\//, 'must be an absolute path'),
  libvirtUri: z.string().min(1),
  /** SQS long-poll wait (1-20 s). */
  pollWaitSeconds: z.coerce.number().int().min(1).max(20).default(20),
  /** Backups and restores run at once at most; other kinds do not count. */
  maxConcurrentTasks: positiveInt(2),
  inventoryIntervalSeconds: positiveInt(60),
  /** How long SIGTERM waits for running tasks before aborting them. */
  shutdownGraceSeconds: positiveInt(300),
  /**
   * Folders under which users' restores and downloads may write (`runner/confine.ts`); a
   * relative target goes under the first. Absolute, no `..`, no control characters.
   */
  restoreRoots: z.array(RestoreRoot).min(1, 'must name at least one folder'),
  /**
   * Ceph pools this host lets restores write new rbd images into (`LIFEBOAT_RESTORE_POOLS`,
   * comma-separated; default none). The host's own word: a task naming another pool is refused
   * whatever the control plane's RESTORE_POOLS says (the task is untrusted input to root).
   */
  restorePools: z.array(PoolName).optional(),
  /**
   * How the runner authenticates to the API (`LIFEBOAT_API_AUTH`): `bearer` (its host credential,
   * got with an enrollment token), or `iam` (SigV4 with the default AWS credentials, its IAM
   * Roles Anywhere session, on the `/runner/...` routes). Absent means `bearer`.
   */
  apiAuth: z.enum(['bearer', 'iam']).optional(),
  /** With `iam`: this host's id, the CN of its certificate (`LIFEBOAT_HOST_ID`). */
  hostId: z.coerce.number().int().nonnegative().max(999_999_999).optional(),
  /**
   * Local mode's session endpoint (`LIFEBOAT_LOCAL_SESSION_URL`, loopback only): the runner's
   * AWS calls sign with the key it answers for this host's credential
   * (runner/session-credentials.ts) rather than with the default AWS credentials.
   */
  localSessionUrl: z.string().optional(),
});
export type RunnerConfig = z.infer<typeof RunnerConfig>;

/** Flags of `runner/main.ts` (and of `lifeboat runner`), as parsed strings. */
export interface RunnerFlags {
  endpoint?: string;
  enrollTokenFile?: string;
  home?: string;
  name?: string;
  stateDir?: string;
  libvirtUri?: string;
  pollWait?: string;
  maxTasks?: string;
  /** Colon-separated absolute folders (`--restore-roots`). */
  restoreRoots?: string;
  /** Comma-separated Ceph pool names (`--restore-pools`). */
  restorePools?: string;
}

/** Builds the configuration; throws ValidationError naming the first bad setting. */
export function loadRunnerConfig(
  flags: RunnerFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): RunnerConfig {
  const pick = (...values: (string | undefined)[]) => values.find((v) => v !== undefined && v !== '');
  const raw = {
    endpoint: pick(flags.endpoint, env.LIFEBOAT_ENDPOINT),
    enrollToken: pick(env.LIFEBOAT_ENROLL_TOKEN),
    enrollTokenFile: pick(flags.enrollTokenFile, env.LIFEBOAT_ENROLL_TOKEN_FILE),
    home: pick(flags.home, env.LIFEBOAT_HOME) ?? join(homedir(), '.lifeboat'),
    hostName: pick(flags.name, env.LIFEBOAT_RUNNER_NAME) ?? hostname(),
    stateDir: pick(flags.stateDir, env.LIFEBOAT_RUNNER_STATE_DIR) ?? '/var/lib/lifeboat/runner',
    libvirtUri: pick(flags.libvirtUri, env.LIFEBOAT_LIBVIRT_URI) ?? 'qemu:///system',
    pollWaitSeconds: pick(flags.pollWait, env.LIFEBOAT_RUNNER_POLL_WAIT),
    maxConcurrentTasks: pick(flags.maxTasks, env.LIFEBOAT_RUNNER_MAX_TASKS),
    inventoryIntervalSeconds: pick(env.LIFEBOAT_RUNNER_INVENTORY_SECONDS),
    shutdownGraceSeconds: pick(env.LIFEBOAT_RUNNER_SHUTDOWN_SECONDS),
    restoreRoots: pick(flags.restoreRoots, env.LIFEBOAT_RESTORE_ROOTS)?.split(':').filter(Boolean) ?? [
      ...DEFAULT_RESTORE_ROOTS,
    ],
    restorePools: pick(flags.restorePools, env.LIFEBOAT_RESTORE_POOLS)
      ?.split(',')
      .map((p) => p.trim())
      .filter(Boolean),
    apiAuth: pick(env.LIFEBOAT_API_AUTH),
    hostId: pick(env.LIFEBOAT_HOST_ID),
    localSessionUrl: parseSessionUrl(pick(env[LOCAL_SESSION_URL])),
  };
  const parsed = RunnerConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // The enrollment token is never echoed back, whatever is wrong with it.
    throw new ValidationError(`runner setting ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  if (parsed.data.apiAuth === 'iam' && parsed.data.hostId === undefined) {
    throw new ValidationError(
      'runner setting hostId: LIFEBOAT_API_AUTH=iam needs LIFEBOAT_HOST_ID (the host id, its certificate CN)',
    );
  }
  if (parsed.data.apiAuth === 'iam' && parsed.data.localSessionUrl !== undefined) {
    throw new ValidationError(
      `runner setting localSessionUrl: ${LOCAL_SESSION_URL} exchanges the host credential of identity.json, which a runner with LIFEBOAT_API_AUTH=iam does not have`,
    );
  }
  return parsed.data;
}

const EndpointFile = z.object({ endpoint: z.string().min(1) });

/**
 * The API endpoint now: the fixed one, else endpoint.json's (whose token, the admin's, is never
 * read). Throws ApiUnavailable while neither gives one (the caller retries).
 */
export function resolveConnection(config: Pick<RunnerConfig, 'endpoint' | 'home'>): Connection {
  let { endpoint } = config;
  if (!endpoint) {
    const path = join(config.home, 'endpoint.json');
    try {
      endpoint = EndpointFile.parse(JSON.parse(readFileSync(path, 'utf8'))).endpoint;
    } catch {
      throw new ApiUnavailable(`no Lifeboat API endpoint: set LIFEBOAT_ENDPOINT, or write ${path}`);
    }
  }
  return { endpoint: endpoint.replace(/\/+$/, '') };
}
