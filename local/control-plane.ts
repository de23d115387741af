/**
 * The whole control plane of local mode in one process: DynamoDB Local (a child process), the
 * SQS emulator, the Step Functions shim running the synthesized definitions, the Lambda Invoke
 * endpoint, the EventBridge Scheduler endpoint (the dispatcher's tick and every scheduled action
 * are schedules there, as in AWS) and the HTTP API gateway. The supervisor runs this; tests may too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ROUTES } from '#functions/api/routes.ts';
import type { CfnTemplate } from '#infra/definition.ts';
import { ensureAdmin } from './admin.ts';
import type { HomePaths, LocalConfig } from './config.ts';
import { type LocalCredentials, writeLocalCredentials } from './credentials.ts';
import { ensureTables, localDynamoClient, startDynamoDb } from './dynamodb.ts';
import { applyEnvironment, lambdaEnvironment } from './env.ts';
import { findFunction, invokeLocal } from './functions.ts';
import { startGateway } from './gateway.ts';
import { hostLookup } from './iam/hosts.ts';
import { FUNCTIONS, LocalIam, STATE_MACHINES } from './iam/keyring.ts';
import { EventQueue, startLambdaEndpoint } from './lambda-endpoint.ts';
import { assertPortFree } from './ports.ts';
import { ScheduleStore } from './scheduler/schedules.ts';
import { startSchedulerServer } from './scheduler/server.ts';
import { templateSchedules } from './scheduler/template.ts';
import { ensureHostDeadLetterQueue, localSqsClient, startSqs } from './sqs.ts';
import { cachedTemplate, machineArnOfKind, machinesOfTemplate } from './stepfunctions/definitions.ts';
import { LocalStepFunctions } from './stepfunctions/runtime.ts';
import { startStepFunctionsServer } from './stepfunctions/server.ts';
import { TaskTokens } from './stepfunctions/task-tokens.ts';

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
}): Promise<ControlPlane> {
  const { paths, config, log } = opts;
  const stops: (() => Promise<void> | void)[] = [];
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

    // A new key at each start, readable by this user only: every client of the emulators signs
    // with it (the Lambdas and the runner through the environment) and they refuse all others.
    // One key per principal of the template (local/iam/): the endpoints enforce its policies.
    const iam = new LocalIam({ region: config.region, log });
    const credentials = iam.admin;
    await writeLocalCredentials(paths.credentials, credentials);

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
    try {
      ({ template, cached } = await cachedTemplate(config, `${paths.stepfunctions}/template.json`));
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
    const events = new EventQueue(invokeLocal, log);
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

    // Handlers read their settings from the environment: set it before any of them is imported.
    const env = lambdaEnvironment({
      config,
      // Until each function runs with its own role's key (iam.credentialsForFunction), the
      // in-process functions share one principal: every function role's policies together.
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
    const tokens = new TaskTokens();
    const sfn = new LocalStepFunctions(
      machines,
      {
        tokens,
        invoke: invokeLocal,
        sendMessage: (m) => machineSqs.send(new SendMessageCommand(m as never)),
      },
      `${paths.stepfunctions}/executions.json`,
    );
    await sfn.load();
    stops.push(() => sfn.close());
    const sfnServer = await startStepFunctionsServer(sfn, tokens, config.ports.stepfunctions, iam);
    stops.push(() => sfnServer.stop());

    const lambda = await startLambdaEndpoint({
      port: config.ports.lambda,
      invoke: invokeLocal,
      events,
      credentials: iam,
    });
    stops.push(() => lambda.stop());

    for (const spec of opts.extraChildren ?? []) {
      const child = startChild(spec, env, log);
      children[spec.name] = child.pid ?? -1;
      opts.onChild?.(spec.name, child.pid ?? -1);
      stops.push(() => stopChild(child));
    }

    // The gateway last: /health answering means everything behind it is ready.
    const gateway = await startGateway({
      port: config.ports.api,
      routes: ROUTES,
      handler: (event) => invokeLocal('Api', event),
      health: () => ({ home: paths.home, pid: process.pid, waitingTasks: tokens.size }),
      log,
    });
    stops.push(() => gateway.stop());
    log({ level: 'info', msg: 'control plane ready', endpoint: gateway.endpoint, ms: Date.now() - t0 });
    return { endpoint: gateway.endpoint, children, credentials, iam, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function startChild(spec: ChildSpec, env: Record<string, string>, log: Log): ChildProcess {
  const child = spawn(spec.command, spec.args, {
    env: { ...process.env, ...env, ...spec.env },
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
