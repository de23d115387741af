/**
 * The runner daemon's wiring: journal -> reconcile what a crash left -> register the host
 * (retrying until the API answers) -> inventory at once on libvirt's domain events and every
 * minute as a safety net -> poll the host queue with a concurrency limit. `stop()` stops
 * polling, waits for running tasks (the grace period, 5 min by default), then aborts what still
 * runs, so every task is answered before the process exits.
 *
 * Every tool the daemon starts is recorded in the state folder's process registry from the very
 * first (reconcile's own tools included), so the next start stops what a SIGKILL left running.
 *
 * Reconcile runs before registration on purpose: a VM left running on a snapshot overlay gets
 * its disks back at once, even while the API is still unreachable.
 */
import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ValidationError } from '#core/errors.ts';
import { watchProcessGroups } from '#drivers/exec.ts';
import { retry } from '#platform/retry.ts';
import pkg from '../package.json' with { type: 'json' };
import { ApiAnswerError, type ApiConnector, httpApi, type RunnerApi } from './api-client.ts';
import { CoalescedReports } from './coalesced-reports.ts';
import { type RunnerConfig, resolveConnection } from './config.ts';
import { followDomainEvents } from './domain-events.ts';
import { hostDrivers } from './drivers.ts';
import { NotEnrolled } from './errors.ts';
import { Executor } from './executor.ts';
import { enrollmentToken } from './identity.ts';
import { Journal } from './journal.ts';
import { type Logger, makeLogger } from './log.ts';
import { pollLoop, type QueueApi, sqsQueueApi } from './poller.ts';
import { PROCESS_GROUPS_FILE, ProcessRegistry } from './process-registry.ts';
import { dynamoProgressSink, type ProgressSink } from './progress.ts';
import { reconcileUnfinished } from './reconcile.ts';
import {
  connectHost,
  connectHostSigned,
  type HostConnection,
  type InventoryReader,
  type RegisteredHost,
  reportInventory,
  startInventoryLoop,
} from './register.ts';
import { Reporter, sfnTaskTokenApi, type TaskTokenApi } from './reporter.ts';
import { hostKeyPath, sealedSecretResolver } from './sealed-secrets.ts';
import { hostSessionClients, hostSessionCredentials } from './session-credentials.ts';
import { signedApi } from './signed-api.ts';
import { type Drivers, type SecretResolver, scratchRoot, workRoot } from './tasks/context.ts';

/** The edges of the daemon; each defaults to the real thing. */
export interface DaemonDeps {
  /** The API as a given principal (the enrollment token, then the host credential). */
  api?: ApiConnector;
  /** The API signed with the host's IAM session (`apiAuth: 'iam'`). */
  signedApi?: RunnerApi;
  taskTokens?: TaskTokenApi;
  queue?: (queueUrl: string) => QueueApi;
  inventory?: InventoryReader;
  drivers?: Drivers;
  /** Opens the sealed secrets of a task's datastore (default: with `<stateDir>/host-key.pem`). */
  secrets?: SecretResolver;
  /** Where progress goes (default: this host's records of the progress table). */
  progress?: ProgressSink;
  log?: Logger;
  /** Follows libvirt's domain events until its signal aborts (default: a `virsh event` child). */
  domainEvents?: typeof followDomainEvents;
}

/** A started daemon. */
export interface Daemon {
  host: RegisteredHost;
  executor: Executor;
  /**
   * Reports the inventory now, outside the periodic loop and libvirt's events (SIGHUP: a domain
   * was just defined), or right after the report in flight.
   */
  inventoryNow(): Promise<void>;
  /** Stops polling, drains running tasks (aborting them after the grace period). */
  stop(): Promise<void>;
}

export const RUNNER_VERSION: string = pkg.version;

/** Starts the daemon; resolves once it polls. `signal` aborts a start still waiting for the API. */
export async function startDaemon(
  config: RunnerConfig,
  deps: DaemonDeps = {},
  signal?: AbortSignal,
): Promise<Daemon> {
  const rootLog = deps.log ?? makeLogger({ hostName: config.hostName });
  await prepareStateDir(config.stateDir, rootLog);
  const journal = await Journal.open(join(config.stateDir, 'journal.jsonl'));
  const processes = ProcessRegistry.open(join(config.stateDir, PROCESS_GROUPS_FILE), rootLog);
  const unwatch = watchProcessGroups(processes.hooks);
  try {
    return await runDaemon(config, deps, signal, { rootLog, journal, processes, unwatch });
  } catch (error) {
    unwatch();
    throw error;
  }
}

interface Prepared {
  rootLog: Logger;
  journal: Journal;
  processes: ProcessRegistry;
  /** Stops recording process groups (the daemon stopped). */
  unwatch: () => void;
}

async function runDaemon(
  config: RunnerConfig,
  deps: DaemonDeps,
  signal: AbortSignal | undefined,
  { rootLog, journal, processes, unwatch }: Prepared,
): Promise<Daemon> {
  // In local mode every AWS call signs with this host's session key (runner/session-credentials.ts).
  const session = config.localSessionUrl
    ? hostSessionClients(hostSessionCredentials({ url: config.localSessionUrl, stateDir: config.stateDir }))
    : undefined;
  const reporter = new Reporter(deps.taskTokens ?? sfnTaskTokenApi(session?.sfn), rootLog);
  const drivers = deps.drivers ?? hostDrivers(config.libvirtUri);
  // Secrets come sealed in the tasks themselves (reconcile's journalled ones too): no secret store.
  const secrets: SecretResolver = deps.secrets ?? sealedSecretResolver(hostKeyPath(config.stateDir));

  const reconciled = await reconcileUnfinished({
    journal,
    reporter,
    drivers,
    secrets,
    stateDir: config.stateDir,
    log: rootLog,
    processes,
    libvirtUri: config.libvirtUri,
  });
  if (reconciled.length) rootLog('warn', 'reconciled unfinished tasks', { count: reconciled.length });

  const endpoint = () => resolveConnection(config).endpoint;
  const connectOnce =
    config.apiAuth === 'iam'
      ? connectSigned(deps.signedApi ?? signedApi(endpoint), config, rootLog)
      : connectWithBearer(deps.api ?? httpApi(endpoint), config, rootLog);
  const { host, api, hostPath } = await untilRegistered(connectOnce, rootLog, signal);
  const log = rootLog.child({ hostId: host.id });
  log('info', 'runner registered', { queueUrl: host.queueUrl, version: RUNNER_VERSION });

  const stopping = new AbortController();
  const inventory =
    deps.inventory ??
    (async () => (await import('#drivers/disk/inventory.ts')).readHostInventory({ uri: config.libvirtUri }));
  const reports = new CoalescedReports(async () => {
    const started = Date.now();
    let readMs = 0;
    const read = async () => {
      try {
        return await inventory();
      } finally {
        readMs = Date.now() - started;
      }
    };
    try {
      const count = await reportInventory(api, hostPath, read, RUNNER_VERSION);
      // How long libvirt took to read, and the API to take the report: what freshness costs.
      log('debug', 'inventory reported', { vms: count, readMs, ms: Date.now() - started });
    } catch (error) {
      log('warn', 'inventory report failed', { error: (error as Error).message });
    }
  });
  const inventoryNow = () => reports.now();
  const inventoryDone = startInventoryLoop({
    report: inventoryNow,
    intervalSeconds: config.inventoryIntervalSeconds,
    signal: stopping.signal,
  });
  // libvirt's events report a change at once; the minute's loop above stays the safety net.
  const eventsDone = (deps.domainEvents ?? followDomainEvents)({
    uri: config.libvirtUri,
    onChange: (event) => {
      log('info', 'libvirt domain event: inventory to report', { event: event.kind, domain: event.domain });
      reports.request();
    },
    onResumed: () => reports.request(),
    log,
    signal: stopping.signal,
  });
  const executor = new Executor({
    journal,
    reporter,
    drivers,
    secrets,
    // Progress records are keyed by host: known once registered.
    progress: deps.progress ?? dynamoProgressSink(host.id, session?.dynamo),
    stateDir: config.stateDir,
    restoreRoots: config.restoreRoots,
    restorePools: config.restorePools,
    libvirtUri: config.libvirtUri,
    hostId: host.id,
    log,
  });
  const queue = deps.queue ? deps.queue(host.queueUrl) : sqsQueueApi(host.queueUrl, session?.sqs);
  const polling = pollLoop({
    queue,
    executor,
    reporter,
    log,
    maxHeavy: config.maxConcurrentTasks,
    waitSeconds: config.pollWaitSeconds,
    signal: stopping.signal,
  });

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      log('info', 'stopping: no new tasks', { running: executor.size });
      stopping.abort();
      await Promise.all([polling, inventoryDone, eventsDone, reports.stop()]);
      if (!(await executor.drain(config.shutdownGraceSeconds * 1000))) {
        log('warn', 'grace period over: aborting running tasks', { running: executor.size });
        await executor.abortAll('the runner is stopping');
      }
      unwatch();
      log('info', 'stopped');
    })();
    return stopped;
  };
  return { host, executor, inventoryNow, stop };
}

/**
 * An answer retrying cannot change: no identity nor enrollment token, a damaged identity or
 * token file, or the API refusing the credential or token (400, 401, 403).
 */
function isFinal(error: unknown): boolean {
  if (error instanceof NotEnrolled || error instanceof ValidationError) return true;
  return error instanceof ApiAnswerError && [400, 401, 403].includes(error.httpStatus);
}

/** One attempt to connect with a bearer credential (or register with an enrollment token). */
function connectWithBearer(connect: ApiConnector, config: RunnerConfig, log: Logger) {
  const options = {
    name: config.hostName,
    stateDir: config.stateDir,
    enrollToken: () => enrollmentToken(config),
    runnerVersion: RUNNER_VERSION,
    log,
  };
  return () => connectHost(connect, options);
}

/** One attempt to connect signed with the host's IAM session, as host `config.hostId`. */
function connectSigned(api: RunnerApi, config: RunnerConfig, log: Logger) {
  const hostId = config.hostId;
  if (hostId === undefined) throw new ValidationError('runner setting hostId: LIFEBOAT_HOST_ID is not set');
  const options = { hostId, stateDir: config.stateDir, runnerVersion: RUNNER_VERSION, log };
  return () => connectHostSigned(api, options);
}

/**
 * Connects as this host (runner/register.ts), retrying every 2 s up to every 30 s while the API
 * is unreachable or not ready; a final refusal ends the start with its message.
 */
async function untilRegistered(
  connectOnce: () => Promise<HostConnection>,
  log: Logger,
  signal?: AbortSignal,
): Promise<HostConnection> {
  return retry(
    async (attempt) => {
      try {
        return await connectOnce();
      } catch (error) {
        // The first failures are expected in local mode (the API starts after the runner).
        if (!isFinal(error) && (attempt === 3 || attempt % 20 === 0)) {
          log('warn', 'cannot register with the API yet', { error: (error as Error).message, attempt });
        }
        throw error;
      }
    },
    {
      attempts: Number.POSITIVE_INFINITY,
      retryOn: (error) => !isFinal(error),
      delayMs: (attempt) => Math.min(30_000, 2000 * Math.ceil(attempt / 5)),
      ...(signal && { signal }),
    },
  );
}

/**
 * Creates the state folder and its work folder 0711: QEMU (libvirt-qemu) must traverse them to
 * reach the snapshot overlays in the work folders below, while nobody else may list them (the
 * journal is 0600).
 * A parent without search permission for others (a 0700 home) breaks every backup of a running
 * VM with "Permission denied" from QEMU: said at start rather than at the first backup.
 * The scratch folder is emptied ({@link emptyScratch}).
 */
async function prepareStateDir(stateDir: string, log: Logger): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o711 });
  await chmod(stateDir, 0o711);
  // The work folders' parent as well, made here rather than by whichever task comes first: a
  // restore or flatten creating it with its 0700 download folders would shut QEMU out of the
  // overlays of every later backup of a running VM. Set again at each start (repairs such a host).
  await mkdir(workRoot(stateDir), { recursive: true, mode: 0o711 });
  await chmod(workRoot(stateDir), 0o711);
  await emptyScratch(stateDir, log);
  for (let dir = dirname(stateDir); ; dir = dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      log('warn', 'QEMU cannot reach the state folder: backups of running VMs will fail', {
        stateDir,
        blockedAt: dir,
      });
      break;
    }
    if (dir === dirname(dir)) break;
  }
}

/**
 * Makes the scratch folder empty and 0700. What is in it was left by a runner that was killed
 * (its `finally` never ran): restic password files and hash pipes of its last tasks. No task of
 * this start has run yet, and one left running by the old process read its password long ago.
 */
async function emptyScratch(stateDir: string, log: Logger): Promise<void> {
  const dir = scratchRoot(stateDir);
  const left = await readdir(dir).catch(() => []);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o700 });
  if (left.length)
    log('info', 'removed what the last run left in the scratch folder', { dir, count: left.length });
}
