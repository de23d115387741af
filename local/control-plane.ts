/**
 * The whole control plane of local mode in one process: DynamoDB Local (a child process), the
 * SQS emulator, the Step Functions shim running the synthesized definitions, the Lambda Invoke
 * endpoint, the EventBridge Scheduler endpoint (the dispatcher's tick and every scheduled action
 * are schedules there, as in AWS) and the HTTP API gateway. The supervisor runs this; tests may too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ROUTES } from '#functions/api/routes.ts';
import type { CfnTemplate } from '#infra/definition.ts';
import { ensureAdmin } from './admin.ts';
import type { HomePaths, LocalConfig } from './config.ts';
import { type LocalCredentials, writeLocalCredentials } from './credentials.ts';
import { ensureTables, localDynamoClient, startDynamoDb } from './dynamodb.ts';
import { applyEnvironment, lambdaEnvironment } from './env.ts';
import { FunctionError, findFunction, type Invoker } from './functions.ts';
import { startGateway } from './gateway.ts';
import { hostLookup } from './iam/hosts.ts';
import { FUNCTIONS, LocalIam, STATE_MACHINES } from './iam/keyring.ts';
import { hostOfCredential, runnerEnvironment, startSessionServer } from './iam/sessions.ts';
import { bundleStores, type FunctionBundle, prepareBundles } from './lambda-bundles.ts';
import { EventQueue, startLambdaEndpoint } from './lambda-endpoint.ts';
import {
  type CredentialsFor,
  functionRuntimes,
  type LocalServices,
  type TemplateFunction,
  templateFunctions,
} from './lambda-environment.ts';
import { LambdaWorkers } from './lambda-workers.ts';
import { assertPortFree } from './ports.ts';
import { ScheduleStore } from './scheduler/schedules.ts';
import { startSchedulerServer } from './scheduler/server.ts';
import { templateSchedules } from './scheduler/template.ts';
import { ensureHostDeadLetterQueue, localSqsClient, startSqs } from './sqs.ts';
import { cachedTemplate, machineArnOfKind, machinesOfTemplate } from './stepfunctions/definitions.ts';
import { LocalStepFunctions } from './stepfunctions/runtime.ts';
import { startStepFunctionsServer } from './stepfunctions/server.ts';
import { TaskTokens } from './stepfunctions/task-tokens.ts';

/** Functions started ahead once the API answers (manifest ids). */
const BACKUP_PATH_FUNCTIONS = ['Authorizer', 'Dispatcher', 'AdmitBackup', 'CommitBackup', 'Release'];

/** A structured log line writer. */
export type Log = (entry: Record<string, unknown>) => void;

/**
 * A process started after the control plane is up, with the Lambda environment (endpoints,
 * table names) added to its own: the hook for this host's runner.
 */
export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/** A running control plane. */
export interface ControlPlane {
  endpoint: string;
  /** Pids of the processes it started, by name (`dynamodb`, and each extra child). */
  children: Record<string, number>;
  /** This start's admin key (also in `paths.credentials`), allowed everything. */
  credentials: LocalCredentials;
  /** Every principal's key and the IAM enforcement of the endpoints (local/iam/keyring.ts). */
  iam: LocalIam;
  /** The functions as the template defines them (their role's logical id included). */
  functions: readonly TemplateFunction[];
  /** Where a runner exchanges its host credential for its host's key (local/iam/sessions.ts). */
  sessionEndpoint: string;
  stop(): Promise<void>;
}

/**
 * Start everything. `adminTokenHash` (when given) becomes user admin's token hash.
 * `extraChildren` are started last (the local runner will be one).
 */
export async function startControlPlane(opts: {
  paths: HomePaths;
  config: LocalConfig;
  adminTokenHash?: string;
  extraChildren?: readonly ChildSpec[];
  log: Log;
  onChild?: (name: string, pid: number) => void;
  /**
   * Runs once the tables exist, before any extra child starts (the runner's enrollment, which
   * takes its host's key from `iam`).
   */
  onTables?: (ddb: DynamoDBClient, iam: LocalIam) => Promise<void>;
  /**
   * The key each function's role signs with (its worker's AWS_ACCESS_KEY_ID and secret), by the
   * role's logical id in the template. Default: the key ring's key of that role.
   */
  credentialsFor?: (
    roleLogicalId: string | undefined,
    functionId: string,
    start: LocalCredentials,
  ) => LocalCredentials;
  /**
   * Load the functions' TypeScript sources instead of their bundles (LIFEBOAT_LOCAL_SOURCES=1 by
   * default): quicker iteration, but not the code that deploys.
   */
  sources?: boolean;
}): Promise<ControlPlane> {
  const { paths, config, log } = opts;
  const stops: (() => Promise<void> | void)[] = [];
  let workersReady: (workers: LambdaWorkers) => void = () => {};
  let workersFailed: (err: unknown) => void = () => {};
  const children: Record<string, number> = {};
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        log({ level: 'warn', msg: 'stop failed', error: String(err) });
      }
    }
  };
  try {
    const t0 = Date.now();
    await assertPortFree(config.ports.api, 'HTTP API');
    await assertPortFree(config.ports.sqs, 'SQS');
    await assertPortFree(config.ports.stepfunctions, 'Step Functions');
    await assertPortFree(config.ports.lambda, 'Lambda');
    await assertPortFree(config.ports.sessions, 'host sessions');

    // A new key at each start, readable by this user only: every client of the emulators signs
    // with it (the Lambdas and the runner through the environment) and they refuse all others.
    // One key per principal of the template (local/iam/): the endpoints enforce its policies.
    const iam = new LocalIam({ region: config.region, log });
    const credentials = iam.admin;
    await writeLocalCredentials(paths.credentials, credentials);

    // The Lambda bundles build (or come from the cache) while DynamoDB Local starts.
    const sources = opts.sources ?? process.env.LIFEBOAT_LOCAL_SOURCES === '1';
    const bundling = sources ? undefined : timedBundles(paths.home);
    bundling?.catch(() => {});

    // DynamoDB Local (a JVM) starts while the CDK app synthesizes in this process.
    const dbStarting = startDynamoDb({
      port: config.ports.dynamodb,
      dataDir: paths.dynamodb,
      socket: join(paths.run, 'dynamodb.sock'),
      credentials: iam,
      log: (line) => log({ level: 'debug', msg: line }),
    });
    dbStarting.then(
      (db) => opts.onChild?.('dynamodb', db.pid),
      () => {},
    );
    let template: CfnTemplate;
    let cached: boolean;
    let bundleFiles: Map<string, FunctionBundle> | undefined;
    try {
      ({ template, cached } = await cachedTemplate(config, `${paths.stepfunctions}/template.json`));
      if (bundling) {
        const { bundles, built, ms } = await bundling;
        log({
          level: 'info',
          msg: built.length ? 'bundles built' : 'bundles from cache',
          ...(built.length && { built }),
          ms,
        });
        bundleFiles = bundles;
      } else {
        log({ level: 'warn', msg: 'LIFEBOAT_LOCAL_SOURCES: functions run from their sources, not bundles' });
      }
    } catch (err) {
      await dbStarting.then((db) => db.stop()).catch(() => {});
      throw err;
    }
    const machines = machinesOfTemplate(template, config.region);
    iam.loadTemplate(template, config.region);
    log({
      level: 'info',
      msg: cached ? 'template from cache' : 'synthesized',
      machines: machines.map((m) => m.name),
      ms: Date.now() - t0,
    });
    const db = await dbStarting;
    stops.push(() => db.stop());
    children.dynamodb = db.pid;
    const hosts = hostLookup(db.endpoint, credentials, config.region);
    stops.push(() => hosts.stop());
    iam.setHostLookup(hosts.lookup);
    const ddb = localDynamoClient(db.endpoint, credentials, config.region);
    const created = await ensureTables(ddb);
    if (created.length) log({ level: 'info', msg: 'tables created', tables: created });
    if (opts.adminTokenHash) {
      const admin = await ensureAdmin(ddb, opts.adminTokenHash);
      log({ level: 'info', msg: `admin user ${admin}` });
    }
    try {
      await opts.onTables?.(ddb, iam);
    } finally {
      ddb.destroy();
    }
    await iam.persistTo(paths.credentials);

    const sqs = await startSqs({
      port: config.ports.sqs,
      socket: join(paths.run, 'sqs.sock'),
      credentials: iam,
      dataDir: paths.sqs,
      region: config.region,
    });
    stops.push(() => sqs.stop());
    const sqsClient = localSqsClient(sqs.endpoint, credentials, config.region);
    stops.push(() => sqsClient.destroy());
    const hostDeadLetterQueueArn = await ensureHostDeadLetterQueue(sqsClient);

    // EventBridge Scheduler: it invokes its targets asynchronously, one at a time per function
    // as the dispatcher's reserved concurrency of 1 does.
    // Invocations wait for the functions' workers, which need every endpoint's address.
    const workersStarted = new Promise<LambdaWorkers>((resolve, reject) => {
      workersReady = resolve;
      workersFailed = reject;
    });
    workersStarted.catch(() => {});
    const invoke: Invoker = async (id, event) => (await workersStarted).invoke(id, event);
    const events = new EventQueue(invoke, log);
    stops.push(() => events.drain());
    const schedules = new ScheduleStore(
      join(paths.scheduler, 'schedules.json'),
      (arn, event, roleArn) => {
        const spec = findFunction(arn);
        if (!spec) throw new Error(`no local function ${arn}`);
        // Scheduler invokes as the schedule's role: only what its policy lets it invoke.
        void iam.authorizeScheduleTarget(roleArn, arn).then((denial) => {
          if (denial) log({ level: 'error', msg: 'schedule target not invoked', error: denial.message });
          else void events.enqueue(spec.id, event);
        });
      },
      log,
    );
    await schedules.load();
    stops.push(() => schedules.close());
    const schedulerServer = await startSchedulerServer({
      port: 0,
      store: schedules,
      credentials: iam,
      region: config.region,
    });
    stops.push(() => schedulerServer.stop());
    // The stack's own schedules (the dispatcher's tick, infra/scheduler.ts), created at start
    // from the template as the deployment creates them; the tick's interval is configurable.
    for (const schedule of templateSchedules(template, config.region, config.schedulerIntervalSeconds)) {
      await schedules.put(schedule);
    }

    // The runner's environment (endpoints, table names), also this process's: the runner
    // inherits it, and no real AWS identity or endpoint must leak into either.
    const env = lambdaEnvironment({
      config,
      // The functions sign with their own roles' keys (below); this key is only this
      // process's default; a child (the runner) gets none, it takes its host's key from the
      // session endpoint (local/iam/sessions.ts).
      credentials: iam.credentialsFor(FUNCTIONS),
      secretsDir: paths.secrets,
      backupStateMachineArn: machineArnOfKind(machines, 'Backup'),
      restoreStateMachineArn: machineArnOfKind(machines, 'Restore'),
      maintenanceStateMachineArn: machineArnOfKind(machines, 'Maintenance'),
      hostDeadLetterQueueArn,
      schedulerEndpoint: schedulerServer.endpoint,
    });
    applyEnvironment(env);

    // The state machines send host tasks as their roles do in AWS.
    const machineSqs = new SQSClient({
      endpoint: sqs.endpoint,
      region: config.region,
      credentials: iam.credentialsFor(STATE_MACHINES),
    });
    stops.push(() => machineSqs.destroy());
    // Each function in workers of its own, with what the template gives it: the local services
    // replace only the AWS endpoints, the credentials and the secret store.
    const functions = templateFunctions(template, config.region);
    const services: LocalServices = {
      region: config.region,
      secretsDir: paths.secrets,
      endpoints: {
        DYNAMODB: `http://127.0.0.1:${config.ports.dynamodb}`,
        SQS: `http://127.0.0.1:${config.ports.sqs}`,
        SFN: `http://127.0.0.1:${config.ports.stepfunctions}`,
        LAMBDA: `http://127.0.0.1:${config.ports.lambda}`,
        SCHEDULER: schedulerServer.endpoint,
      },
    };
    assertSameQueue(functions, hostDeadLetterQueueArn);
    // Each function signs as its own role (IAM enforced per role, local/iam/keyring.ts).
    const credentialsFor: CredentialsFor = (role, id) =>
      opts.credentialsFor?.(role, id, credentials) ??
      (role ? iam.credentialsForRole(role) : iam.credentialsFor(FUNCTIONS));
    const workers = new LambdaWorkers(
      functionRuntimes({ functions, bundles: bundleFiles, services, credentialsFor }),
    );
    stops.push(() => workers.stop());
    // The API answers first: its environment starts now, not at the first request.
    void workers.prewarm(['Api']);
    workersReady(workers);

    const tokens = new TaskTokens();
    const sfn = new LocalStepFunctions(
      machines,
      {
        tokens,
        invoke,
        sendMessage: (m) => machineSqs.send(new SendMessageCommand(m as never)),
      },
      `${paths.stepfunctions}/executions.json`,
    );
    await sfn.load();
    stops.push(() => sfn.close());
    const sfnServer = await startStepFunctionsServer(sfn, tokens, config.ports.stepfunctions, iam);
    stops.push(() => sfnServer.stop());

    // Runners get their host's key here, proving their host with its credential (Roles Anywhere's part).
    const hostsOfCredentials = hostOfCredential(db.endpoint, credentials, config.region);
    stops.push(() => hostsOfCredentials.stop());
    const sessions = await startSessionServer({
      port: config.ports.sessions,
      iam,
      hostOf: hostsOfCredentials.find,
      log,
    });
    stops.push(() => sessions.stop());

    const lambda = await startLambdaEndpoint({
      port: config.ports.lambda,
      invoke,
      events,
      credentials: iam,
    });
    stops.push(() => lambda.stop());

    for (const spec of opts.extraChildren ?? []) {
      const child = startChild(spec, env, sessions.endpoint, log);
      children[spec.name] = child.pid ?? -1;
      opts.onChild?.(spec.name, child.pid ?? -1);
      stops.push(() => stopChild(child));
    }

    // The gateway last: /health answering means everything behind it is ready.
    const gateway = await startGateway({
      port: config.ports.api,
      routes: ROUTES,
      handler: (event) => invoke('Api', event),
      // Every bearer-token request first goes through the authorizer, its answers cached per
      // token as API Gateway caches them in AWS.
      authorizer: (event) => invoke('Authorizer', event),
      authorizerCacheSeconds: config.authorizerCacheSeconds,
      health: () => ({
        home: paths.home,
        pid: process.pid,
        waitingTasks: tokens.size,
        dynamodbCalls: db.counter.snapshot(),
      }),
      log,
      // The web console, built by `npm start` (scripts/build-console.ts); absent: `/` is a 404.
      webRoot: fileURLToPath(new URL('../web/', import.meta.url)),
    });
    stops.push(() => gateway.stop());
    log({ level: 'info', msg: 'control plane ready', endpoint: gateway.endpoint, ms: Date.now() - t0 });
    // The functions of a backup's way (the authorizer of every user request, the dispatcher, the
    // backup's steps) are started now that the API answers: the first backup after a start
    // would otherwise pay one cold start at each step (about 3 s on a busy 2-core host).
    void workers.prewarm(BACKUP_PATH_FUNCTIONS);
    return {
      endpoint: gateway.endpoint,
      children,
      credentials,
      iam,
      functions,
      sessionEndpoint: sessions.endpoint,
      stop: stopAll,
    };
  } catch (err) {
    // An invocation waiting for the workers (a schedule firing early) fails instead of hanging.
    workersFailed(new FunctionError('ServiceException', 'local mode failed to start'));
    await stopAll();
    throw err;
  }
}

/** Bundles of every function, with the time they took. */
async function timedBundles(home: string) {
  const t0 = Date.now();
  const result = await prepareBundles(bundleStores(home));
  return { ...result, ms: Date.now() - t0 };
}

/**
 * The dead-letter queue the functions name (the template's) must be the one the emulator holds:
 * a difference would send failed host tasks nowhere.
 */
function assertSameQueue(functions: readonly TemplateFunction[], arn: string): void {
  for (const fn of functions) {
    const named = fn.environment.HOST_DEAD_LETTER_QUEUE_ARN;
    if (named !== undefined && named !== arn)
      throw new Error(`${fn.id}'s HOST_DEAD_LETTER_QUEUE_ARN ${named} is not the local queue ${arn}`);
  }
}

function startChild(
  spec: ChildSpec,
  env: Record<string, string>,
  sessionUrl: string,
  log: Log,
): ChildProcess {
  const child = spawn(spec.command, spec.args, {
    // A runner: no AWS key of local mode's own, its host's from the session endpoint.
    env: runnerEnvironment({ ...process.env, ...env, ...spec.env }, sessionUrl),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n'))
        if (line.trim()) log({ level: 'info', child: spec.name, msg: line });
    });
  }
  child.on('exit', (code, signal) => log({ level: 'warn', msg: `${spec.name} exited`, code, signal }));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
