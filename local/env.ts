/**
 * The environment of the processes local mode starts (the runner) and of the supervisor itself:
 * the emulators' `AWS_ENDPOINT_URL_*`, local mode's key, the table names and the stack's
 * settings. The Lambda functions do not read it: each gets the variables its template resource
 * gives it (local/lambda-environment.ts).
 */
import { TABLES } from '#functions/tables.ts';
import { LOCAL_ACCOUNT, type LocalConfig } from './config.ts';
import type { LocalCredentials } from './credentials.ts';
import { localTableName } from './dynamodb.ts';
import { localFunctionName } from './functions.ts';

/** ARN of a state machine as the local shim names it. */
export function localStateMachineArn(region: string, name: string): string {
  return `arn:aws:states:${region}:${LOCAL_ACCOUNT}:stateMachine:${name}`;
}

/** The schedule group of the stack (infra/scheduler.ts SCHEDULE_GROUP). */
export const LOCAL_SCHEDULE_GROUP = 'lifeboat';

/** The role the schedules name locally (the stack's VmScheduleRole in AWS). */
export const LOCAL_SCHEDULE_ROLE_ARN = `arn:aws:iam::${LOCAL_ACCOUNT}:role/lifeboat-local-schedule`;

/** ARN of a local function by its manifest id. */
export function localFunctionArn(region: string, id: string): string {
  return `arn:aws:lambda:${region}:${LOCAL_ACCOUNT}:function:${localFunctionName({ id })}`;
}

/** The runner's variables (a superset: every variable a handler reads), for this home and configuration. */
export function lambdaEnvironment(opts: {
  config: LocalConfig;
  /** Local mode's per-start key: the emulators refuse requests not signed with it. */
  credentials: LocalCredentials;
  secretsDir: string;
  backupStateMachineArn: string;
  restoreStateMachineArn: string;
  maintenanceStateMachineArn: string;
  /** ARN of the shared host dead-letter queue (local/sqs.ts ensureHostDeadLetterQueue). */
  hostDeadLetterQueueArn: string;
  /** URL of local mode's EventBridge Scheduler (local/scheduler/server.ts). */
  schedulerEndpoint: string;
}): Record<string, string> {
  const { config } = opts;
  const local = (port: number) => `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    AWS_REGION: config.region,
    AWS_DEFAULT_REGION: config.region,
    // Local mode's own key (local/credentials.ts): real AWS credentials must never reach the
    // emulators, and the emulators accept nothing else.
    AWS_ACCESS_KEY_ID: opts.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: opts.credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: local(config.ports.dynamodb),
    AWS_ENDPOINT_URL_SQS: local(config.ports.sqs),
    AWS_ENDPOINT_URL_SFN: local(config.ports.stepfunctions),
    AWS_ENDPOINT_URL_LAMBDA: local(config.ports.lambda),
    AWS_ENDPOINT_URL_SCHEDULER: opts.schedulerEndpoint,
    // As infra/stack.ts sets them: scheduled actions become schedules in this group, invoking
    // the dispatcher, so local mode runs the same CreateSchedule/DeleteSchedule path as AWS.
    SCHEDULE_GROUP: LOCAL_SCHEDULE_GROUP,
    SCHEDULER_ROLE_ARN: LOCAL_SCHEDULE_ROLE_ARN,
    SCHEDULE_TARGET_ARN: localFunctionArn(config.region, 'Dispatcher'),
    BACKUP_STATE_MACHINE_ARN: opts.backupStateMachineArn,
    RESTORE_STATE_MACHINE_ARN: opts.restoreStateMachineArn,
    MAINTENANCE_STATE_MACHINE_ARN: opts.maintenanceStateMachineArn,
    DISPATCHER_FUNCTION_NAME: localFunctionName({ id: 'Dispatcher' }),
    HOST_QUEUE_PREFIX: 'lifeboat-host-',
    HOST_DEAD_LETTER_QUEUE_ARN: opts.hostDeadLetterQueueArn,
    MAX_BACKUPS: String(config.maxBackups),
    MAX_BACKUPS_HOST: String(config.maxBackupsHost),
    HEARTBEAT_SECONDS: String(config.heartbeatSeconds),
    HOST_OFFLINE_SECONDS: String(config.hostOfflineSeconds),
    LIFEBOAT_SECRET_STORE: `local:${opts.secretsDir}`,
  };
  for (const spec of TABLES) env[spec.envVar] = localTableName(spec);
  return env;
}

/** Variables removed from the process so no real AWS identity or endpoint leaks in. */
export const CLEARED_VARIABLES = ['AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL'] as const;

/** Apply `env` to this process, whose environment the runner inherits. */
export function applyEnvironment(env: Record<string, string>): void {
  for (const name of CLEARED_VARIABLES) delete process.env[name];
  Object.assign(process.env, env);
}
