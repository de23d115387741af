/**
 * The runner's configuration, from command-line flags over environment variables over defaults,
 * validated with zod so a bad value stops the daemon at start with a message naming it.
 *
 * The API connection is resolved like the CLI's: `--endpoint`/`--token`, then
 * `LIFEBOAT_ENDPOINT`/`LIFEBOAT_TOKEN`, then `${LIFEBOAT_HOME:-~/.lifeboat}/endpoint.json`. The
 * file is read again on every attempt ({@link resolveConnection}), because in local mode the
 * runner starts before `lifeboat local up` has written it.
 */
import { readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { HostPath } from '#core/contracts/tasks.ts';
import { ValidationError } from '#core/errors.ts';
import { ApiUnavailable } from './errors.ts';

/** Where the API is and the token to use there (never logged). */
export interface Connection {
  endpoint: string;
  token: string;
}

/** Default of `LIFEBOAT_RESTORE_ROOTS`. */
export const DEFAULT_RESTORE_ROOTS = ['/var/lib/lifeboat/restores'] as const;

const RestoreRoot = HostPath.regex(/^\//, 'must be absolute paths')
  // `/srv/r/` and `/srv/r` are one root; `/` stays itself.
  .transform((p) => p.replace(/\/+$/, '') || '/');

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const RunnerConfig = z.object({
  /** Fixed endpoint and token; when absent, endpoint.json under {@link RunnerConfig.home}. */
  endpoint: z.url().optional(),
  token: z.string().min(1).optional(),
  home: z.string().min(1),
  /** Host name this runner registers as (`POST /hosts {name}`). */
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
});
export type RunnerConfig = z.infer<typeof RunnerConfig>;

/** Flags of `runner/main.ts` (and of `lifeboat runner`), as parsed strings. */
export interface RunnerFlags {
  endpoint?: string;
  token?: string;
  home?: string;
  name?: string;
  stateDir?: string;
  libvirtUri?: string;
  pollWait?: string;
  maxTasks?: string;
  /** Colon-separated absolute folders (`--restore-roots`). */
  restoreRoots?: string;
}

/** Builds the configuration; throws ValidationError naming the first bad setting. */
export function loadRunnerConfig(
  flags: RunnerFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): RunnerConfig {
  const pick = (...values: (string | undefined)[]) => values.find((v) => v !== undefined && v !== '');
  const raw = {
    endpoint: pick(flags.endpoint, env.LIFEBOAT_ENDPOINT),
    token: pick(flags.token, env.LIFEBOAT_TOKEN),
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
  };
  const parsed = RunnerConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // The token is never echoed back, whatever is wrong with it.
    throw new ValidationError(`runner setting ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return parsed.data;
}

const EndpointFile = z.object({ endpoint: z.string().min(1), token: z.string().min(1).optional() });

/**
 * The API connection now: fixed values first, each falling back to endpoint.json independently.
 * Throws ApiUnavailable while neither gives an endpoint and a token (the caller retries).
 */
export function resolveConnection(config: Pick<RunnerConfig, 'endpoint' | 'token' | 'home'>): Connection {
  let { endpoint, token } = config;
  if (!endpoint || !token) {
    const path = join(config.home, 'endpoint.json');
    let file: z.infer<typeof EndpointFile> | undefined;
    try {
      file = EndpointFile.parse(JSON.parse(readFileSync(path, 'utf8')));
    } catch {
      file = undefined;
    }
    endpoint ||= file?.endpoint;
    token ||= file?.token;
    if (!endpoint || !token) {
      throw new ApiUnavailable(
        `no Lifeboat API endpoint and token: set LIFEBOAT_ENDPOINT and LIFEBOAT_TOKEN, or write ${path}`,
      );
    }
  }
  return { endpoint: endpoint.replace(/\/+$/, ''), token };
}
