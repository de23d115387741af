/**
 * Local mode's home folder layout and its optional `config.json`: ports, limits and timeouts.
 * One place so `up`, `down` and the supervisor agree on every path.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { AUTHORIZER_CACHE_SECONDS } from '#core/accounts.ts';

/** Default port of the HTTP API; the other services take the next four unless configured. */
export const DEFAULT_API_PORT = 7780;

const Port = z.number().int().min(1).max(65535);

/** Schema of `<home>/config.json`. Every field is optional. */
export const LocalConfigFile = z
  .object({
    ports: z
      .object({
        api: Port.optional(),
        dynamodb: Port.optional(),
        sqs: Port.optional(),
        stepfunctions: Port.optional(),
        lambda: Port.optional(),
        sessions: Port.optional(),
      })
      .strict()
      .default({}),
    maxBackups: z.number().int().positive().default(5),
    maxBackupsHost: z.number().int().positive().default(2),
    heartbeatSeconds: z.number().int().positive().default(120),
    /** A host whose runner has not reported for this long becomes OFFLINE (AWS: hostOfflineSeconds). */
    hostOfflineSeconds: z.number().int().positive().default(180),
    hostTaskTimeoutSeconds: z.number().int().positive().default(86400),
    /**
     * Seconds the gateway reuses the authorizer's answer for one token, as API Gateway does in
     * AWS (the same 60 unless set); 0: every request calls the authorizer.
     */
    authorizerCacheSeconds: z.number().int().nonnegative().default(AUTHORIZER_CACHE_SECONDS),
    /**
     * First wait before a host task is retried on a transient error such as DatastoreLocked
     * (infra's hostRetryIntervalSeconds, backoff 2; 30 when absent). Tests shorten it: a
     * DatastoreLocked between two maintenance tasks otherwise costs them 30 s.
     */
    hostRetryIntervalSeconds: z.number().int().positive().optional(),
    /** Seconds between two scheduled dispatcher runs (the AWS schedule is every minute). */
    schedulerIntervalSeconds: z.number().int().positive().default(60),
    /**
     * Minutes between two measures of each datastore's capacity (CDK context
     * `monitorIntervalMinutes`, default 10); 0: none, periodic or after a backup (tests that
     * play the host and take its tasks one by one).
     */
    monitorIntervalMinutes: z.number().int().nonnegative().optional(),
    /**
     * Where failed and missed backups and failed verifications are posted (CDK context
     * `notifyWebhookUrl`), signed with the secret store's `notify/webhook` NOTIFY_WEBHOOK_SECRET
     * (functions/notify.ts). Absent: nobody is told.
     */
    notifyWebhookUrl: z.url({ protocol: /^https?$/ }).optional(),
    region: z.string().min(1).default('us-east-1'),
    /** Run a runner for this host (needs root and libvirt); off for tests that play the host. */
    runner: z.boolean().default(true),
    /**
     * The newcomer's demo (local/demo.ts): with `true`, a first start whose host has no VMs and
     * which has no datastores gets a small demo VM and a local restic datastore; `'always'`
     * skips the no-VMs check (tests on a shared hypervisor); `false` never.
     */
    demo: z.union([z.boolean(), z.literal('always')]).default(true),
  })
  .strict();

/** The resolved configuration: every port known. */
export interface LocalConfig {
  ports: {
    api: number;
    dynamodb: number;
    sqs: number;
    stepfunctions: number;
    lambda: number;
    /** Runners' host sessions (local/iam/sessions.ts): the URL a runner's settings name. */
    sessions: number;
  };
  maxBackups: number;
  maxBackupsHost: number;
  heartbeatSeconds: number;
  hostOfflineSeconds: number;
  hostTaskTimeoutSeconds: number;
  authorizerCacheSeconds: number;
  hostRetryIntervalSeconds?: number;
  schedulerIntervalSeconds: number;
  monitorIntervalMinutes?: number;
  notifyWebhookUrl?: string;
  region: string;
  runner: boolean;
  demo: boolean | 'always';
}

/** Every path under the home folder. */
export interface HomePaths {
  home: string;
  config: string;
  endpoint: string;
  pids: string;
  logs: string;
  supervisorLog: string;
  dynamodb: string;
  sqs: string;
  stepfunctions: string;
  /** Local EventBridge Scheduler's schedules (local/scheduler/schedules.ts). */
  scheduler: string;
  secrets: string;
  /** The per-start access key of the emulators (local/credentials.ts), 0600. */
  credentials: string;
  /** Unix sockets between the loopback fronts and the emulators behind them. */
  run: string;
  runner: string;
}

/** The home folder: explicit argument, else LIFEBOAT_HOME, else `~/.lifeboat`. */
export function resolveHome(home?: string): string {
  return resolve(home ?? process.env.LIFEBOAT_HOME ?? join(homedir(), '.lifeboat'));
}

/** Parent of the local runners' state folders (one per home). */
export const LOCAL_RUNNER_ROOT = '/var/lib/lifeboat/local';

/**
 * The local runner's state folder (journal, work folders with snapshot overlays). It lives
 * outside the home on purpose: QEMU runs as libvirt-qemu and must reach the overlays, and the
 * home is private (0700, often under a 0700 /root). One folder per home, named by its hash.
 */
export function runnerStateDir(home: string): string {
  const id = createHash('sha256').update(resolve(home)).digest('hex').slice(0, 12);
  return join(LOCAL_RUNNER_ROOT, id, 'runner');
}

/** Paths of the files and folders local mode keeps (under `home`, except the runner's). */
export function homePaths(home: string): HomePaths {
  return {
    home,
    config: join(home, 'config.json'),
    endpoint: join(home, 'endpoint.json'),
    pids: join(home, 'pids.json'),
    logs: join(home, 'logs'),
    supervisorLog: join(home, 'logs', 'supervisor.log'),
    dynamodb: join(home, 'dynamodb'),
    sqs: join(home, 'sqs'),
    stepfunctions: join(home, 'stepfunctions'),
    scheduler: join(home, 'scheduler'),
    secrets: join(home, 'secrets'),
    credentials: join(home, 'local-credentials.json'),
    run: join(home, 'run'),
    runner: runnerStateDir(home),
  };
}

/**
 * Resolve a parsed config file: the API port is `portOverride` (the `--port` flag), else the
 * file's, else 7780; each other service takes its configured port or the API port + 1..5.
 */
export function resolveConfig(file: z.infer<typeof LocalConfigFile>, portOverride?: number): LocalConfig {
  const api = portOverride ?? file.ports.api ?? DEFAULT_API_PORT;
  const { ports, ...rest } = file;
  return {
    ...rest,
    ports: {
      api,
      dynamodb: ports.dynamodb ?? api + 1,
      sqs: ports.sqs ?? api + 2,
      stepfunctions: ports.stepfunctions ?? api + 3,
      lambda: ports.lambda ?? api + 4,
      sessions: ports.sessions ?? api + 5,
    },
  };
}

/** Read `<home>/config.json` (absent means defaults); a bad file is an error naming the field. */
export async function loadConfig(home: string, portOverride?: number): Promise<LocalConfig> {
  let raw: unknown = {};
  try {
    raw = JSON.parse(await readFile(homePaths(home).config, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read ${homePaths(home).config}: ${(err as Error).message}`);
    }
  }
  const parsed = LocalConfigFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${homePaths(home).config}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return resolveConfig(parsed.data, portOverride);
}

/** The fake AWS account local mode uses in ARNs (the emulators use the same). */
export const LOCAL_ACCOUNT = '000000000000';
