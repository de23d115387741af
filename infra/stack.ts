/**
 * The Lifeboat control plane in one stack: tables, Lambdas, HTTP API, Backup, Restore and
 * Maintenance state machines, the scheduler, runner access, alarms and the web console. Each part lives in its own file; this one
 * wires them and grants each function only what its job needs.
 */
import path from 'node:path';
import { Annotations, ArnFormat, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { Alarms } from './alarms.ts';
import { type ApiRoute, HttpFront } from './api.ts';
import {
  type LifeboatConfig,
  readConfig,
  SKIP_BUNDLING,
  TRUST_ANCHOR_CERTIFICATE,
  TRUST_ANCHOR_PCA_ARN,
} from './config.ts';
import { ConsoleSite } from './console-site.ts';
import { createFunctions, type LifeboatFunctions, PROJECT_ROOT } from './functions.ts';
import { HostDeadLetters } from './host-dead-letters.ts';
import { acknowledgeFindings } from './nag-suppressions.ts';
import { RunnerAccess } from './runner-access.ts';
import { SCHEDULE_GROUP, Scheduling } from './scheduler.ts';
import { OperationStateMachine, stateMachineArn, stateMachineName } from './state-machines.ts';
import { Tables } from './tables.ts';

export interface LifeboatStackProps extends StackProps {
  /** The API handler's route table (functions/api/routes.ts). */
  routes: readonly ApiRoute[];
  /** Folder holding the Lambda entries and package-lock.json (default: the repo root). */
  projectRoot?: string;
  /** The built web console (default: the repo's web/, built by scripts/build-console.ts). */
  webRoot?: string;
}

/** Functions that run state machine steps: they read and write the operation records. */
const STEP_FUNCTIONS = [
  'AdmitBackup',
  'CommitBackup',
  'AdmitRestore',
  'CommitRestore',
  'AdmitMaintenance',
  'CommitMaintenance',
  'MarkFailed',
  'Release',
];

/** Steps that build host tasks: they read datastore secrets to seal them to the task's host. */
const SEALING_STEPS = ['AdmitBackup', 'AdmitRestore', 'AdmitMaintenance'];

/**
 * Functions that notify (functions/notify.ts): Release and the dispatcher (its sweep and dropped
 * requests) end failed backups, the dispatcher finds missed ones, MarkFailed records failed
 * verifications (a verify job's, a backup's read-back). The Api's cancel ends backups too, but
 * a cancelled backup is not notified.
 */
const NOTIFYING_FUNCTIONS = ['Release', 'Dispatcher', 'MarkFailed'];

export class LifeboatStack extends Stack {
  readonly tables: Tables;
  readonly functions: LifeboatFunctions;
  readonly backup: OperationStateMachine;
  readonly restore: OperationStateMachine;
  readonly maintenance: OperationStateMachine;
  readonly http: HttpFront;
  readonly runnerAccess: RunnerAccess;
  readonly scheduling: Scheduling;
  readonly alarms: Alarms;
  readonly hostDeadLetters: HostDeadLetters;
  /** The web console and the API on one CloudFront origin; absent with context `consoleSite: false`. */
  readonly consoleSite?: ConsoleSite;

  constructor(scope: Construct, id: string, props: LifeboatStackProps) {
    super(scope, id, props);
    const config = readConfig(this.node);
    const names = {
      backup: stateMachineName(this.stackName, 'Backup'),
      restore: stateMachineName(this.stackName, 'Restore'),
      maintenance: stateMachineName(this.stackName, 'Maintenance'),
    };
    // The functions get the machines' ARNs from their fixed names and the machines invoke the
    // functions: building the ARN (rather than referencing the machine) avoids a cycle.
    const arns = {
      backup: stateMachineArn(this, names.backup),
      restore: stateMachineArn(this, names.restore),
      maintenance: stateMachineArn(this, names.maintenance),
    };
    const hostQueueArn = this.formatArn({
      service: 'sqs',
      resource: `${config.hostQueuePrefix}*`,
      arnFormat: ArnFormat.NO_RESOURCE_NAME,
    });
    const secretArnPattern = this.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: 'lifeboat/*',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    this.tables = new Tables(this, 'Tables');
    this.hostDeadLetters = new HostDeadLetters(this, 'HostDeadLetters', {
      queueName: config.hostDeadLetterQueueName,
    });
    const fns = createFunctions(this, {
      projectRoot: props.projectRoot,
      environment: {
        ...this.tables.environment(),
        BACKUP_STATE_MACHINE_ARN: arns.backup,
        RESTORE_STATE_MACHINE_ARN: arns.restore,
        MAINTENANCE_STATE_MACHINE_ARN: arns.maintenance,
        HOST_QUEUE_PREFIX: config.hostQueuePrefix,
        MAX_BACKUPS: String(config.maxBackups),
        MAX_BACKUPS_HOST: String(config.maxBackupsHost),
        HEARTBEAT_SECONDS: String(config.heartbeatSeconds),
        HOST_OFFLINE_SECONDS: String(config.hostOfflineSeconds),
        MONITOR_INTERVAL_MINUTES: String(config.monitorIntervalMinutes),
        CAPACITY_RETENTION_DAYS: String(config.capacityRetentionDays),
        LIFEBOAT_SECRET_STORE: 'secretsmanager',
      },
    });
    this.functions = fns;
    const fn = (fnId: string) => {
      const found = fns[fnId];
      if (!found) throw new Error(`functions/manifest.ts has no ${fnId} entry`);
      return found;
    };

    const common = { hostQueueArn, config, markFailed: fn('MarkFailed'), release: fn('Release') };
    this.backup = new OperationStateMachine(this, {
      ...common,
      kind: 'Backup',
      stateMachineName: names.backup,
      admit: fn('AdmitBackup'),
      commit: fn('CommitBackup'),
    });
    this.restore = new OperationStateMachine(this, {
      ...common,
      kind: 'Restore',
      stateMachineName: names.restore,
      admit: fn('AdmitRestore'),
      commit: fn('CommitRestore'),
    });
    // delete, download, verify, monitor: host tasks that leave nothing to clean up.
    this.maintenance = new OperationStateMachine(this, {
      ...common,
      kind: 'Maintenance',
      cleanup: false,
      stateMachineName: names.maintenance,
      admit: fn('AdmitMaintenance'),
      commit: fn('CommitMaintenance'),
    });

    this.http = new HttpFront(this, 'Http', {
      handler: fn('Api'),
      authorizer: fn('Authorizer'),
      routes: props.routes,
    });
    if (config.consoleSite) {
      const skip = this.node.tryGetContext(SKIP_BUNDLING);
      this.consoleSite = new ConsoleSite(this, 'Console', {
        httpApi: this.http.api,
        routes: props.routes,
        webRoot: props.webRoot ?? path.join(PROJECT_ROOT, 'web'),
        skipBundling: skip === true || skip === 'true',
      });
    }
    // The authorizer reads who a token is, and nothing else.
    this.tables.byKey.users.grantReadData(fn('Authorizer'));
    this.tables.byKey.tokens.grantReadData(fn('Authorizer'));
    this.runnerAccess = new RunnerAccess(this, 'Runner', {
      hostQueuePrefix: config.hostQueuePrefix,
      hostTag: config.runnerHostTag,
      progressTableArn: this.tables.byKey.progress.tableArn,
      httpApi: this.http.api,
      runnerRoutes: props.routes.filter((route) => route.auth === 'iam'),
      trustAnchor: config.runnerTrustAnchor,
    });
    // The Api Lambda accepts IAM-authorized runner routes only from this role's sessions.
    if (this.runnerAccess.role) fn('Api').addEnvironment('RUNNER_ROLE_NAME', this.runnerAccess.role.roleName);
    if (!config.runnerTrustAnchor) {
      Annotations.of(this.runnerAccess).addWarningV2(
        'lifeboat:noRunnerTrustAnchor',
        `No runner trust anchor: set context ${TRUST_ANCHOR_CERTIFICATE} (CA bundle PEM or its file) or ${TRUST_ANCHOR_PCA_ARN}; until then no runner role or Roles Anywhere profile exists and no runner can get credentials`,
      );
    }
    this.scheduling = new Scheduling(this, 'Scheduling', { dispatcher: fn('Dispatcher'), api: fn('Api') });
    this.alarms = new Alarms(this, 'Alarms', {
      stateMachines: {
        Backup: this.backup.stateMachine,
        Restore: this.restore.stateMachine,
        Maintenance: this.maintenance.stateMachine,
      },
      functions: fns,
      deadLetterQueues: { HostDeadLetters: this.hostDeadLetters.queue },
    });
    this.grantNotify(config, NOTIFYING_FUNCTIONS.map(fn));

    this.grantApi(fn('Api'), hostQueueArn, secretArnPattern, fn('Dispatcher'), config.auditRetentionDays);
    // The rights table's changes of this deployment (core/rights.ts), checked at synth.
    if (Object.keys(config.actionRights).length > 0)
      fn('Api').addEnvironment('ACTION_RIGHTS', JSON.stringify(config.actionRights));
    this.grantDispatcher(fn('Dispatcher'), [arns.backup, arns.restore, arns.maintenance]);
    this.grantScheduledActions(fn('Dispatcher'), [names.backup, names.restore, names.maintenance]);
    for (const stepId of STEP_FUNCTIONS) {
      for (const [key, table] of Object.entries(this.tables.byKey)) {
        // Only the API authenticates users; only runners write progress (the API reads it).
        // Only the API writes the audit trail.
        if (!['users', 'groups', 'tokens', 'progress', 'audit'].includes(key))
          table.grantReadWriteData(fn(stepId));
      }
    }
    for (const stepId of SEALING_STEPS) {
      fn(stepId).addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadDatastoreSecretsToSeal',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [secretArnPattern],
        }),
      );
    }
    // Release wakes it when a slot frees; CommitBackup when KEEP_LAST queued deletes;
    // CommitMaintenance when a flatten merged backups (their queued deletes may start).
    fn('Dispatcher').grantInvoke(fn('Release'));
    fn('Dispatcher').grantInvoke(fn('CommitBackup'));
    fn('Dispatcher').grantInvoke(fn('CommitMaintenance'));

    new CfnOutput(this, 'RunnerPolicyArn', { value: this.runnerAccess.policy.managedPolicyArn });
    // Where `lifeboat admin bootstrap --users-table --tokens-table` writes the first admin.
    new CfnOutput(this, 'UsersTableName', { value: this.tables.byKey.users.tableName });
    new CfnOutput(this, 'TokensTableName', { value: this.tables.byKey.tokens.tableName });
    // The runners' TABLE_PROGRESS.
    new CfnOutput(this, 'ProgressTableName', { value: this.tables.byKey.progress.tableName });
    if (this.runnerAccess.role && this.runnerAccess.profile && this.runnerAccess.trustAnchor) {
      new CfnOutput(this, 'RunnerRoleArn', { value: this.runnerAccess.role.roleArn });
      new CfnOutput(this, 'RunnerProfileArn', { value: this.runnerAccess.profile.attrProfileArn });
      new CfnOutput(this, 'RunnerTrustAnchorArn', {
        value: this.runnerAccess.trustAnchor.attrTrustAnchorArn,
      });
    }
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn });
    new CfnOutput(this, 'HostDeadLetterQueueUrl', { value: this.hostDeadLetters.queue.queueUrl });
    new CfnOutput(this, 'BackupStateMachineArn', { value: this.backup.stateMachine.stateMachineArn });
    new CfnOutput(this, 'RestoreStateMachineArn', { value: this.restore.stateMachine.stateMachineArn });
    new CfnOutput(this, 'MaintenanceStateMachineArn', {
      value: this.maintenance.stateMachine.stateMachineArn,
    });

    acknowledgeFindings(this);
  }

  /**
   * The functions that notify (functions/notify.ts) publish to the alarm topic (NOTIFY_TOPIC_ARN),
   * and post to the webhook when one is configured (context `notifyWebhookUrl`; used where no
   * topic is, as in local mode). The dispatcher checks for missed backups every MISSED_CHECK_MINUTES.
   */
  private grantNotify(config: LifeboatConfig, notifiers: LifeboatFunctions[string][]): void {
    for (const notifier of notifiers) {
      this.alarms.topic.grantPublish(notifier);
      notifier.addEnvironment('NOTIFY_TOPIC_ARN', this.alarms.topic.topicArn);
      if (config.notifyWebhookUrl) notifier.addEnvironment('NOTIFY_WEBHOOK_URL', config.notifyWebhookUrl);
    }
    this.functions.Dispatcher?.addEnvironment('MISSED_CHECK_MINUTES', String(config.missedCheckMinutes));
  }

  /**
   * The API: every table, host queues, datastore secrets, schedules. It gets only the ARN of the
   * shared dead-letter queue, for the host queues' RedrivePolicy, and no access to that queue:
   * its `<prefix>*` grant cannot match it (readConfig checks the name).
   */
  private grantApi(
    api: LifeboatFunctions[string],
    hostQueueArn: string,
    secretArnPattern: string,
    dispatcher: LifeboatFunctions[string],
    auditRetentionDays: number,
  ): void {
    for (const [key, table] of Object.entries(this.tables.byKey)) {
      // Progress is the runners' to write: the API only reads it into the executions it shows.
      if (key === 'progress') table.grantReadData(api);
      else if (key !== 'audit') table.grantReadWriteData(api);
    }
    // The audit trail is append-only for the API: it adds records and queries them, but can
    // neither change nor delete one (only DynamoDB's TTL removes them).
    const audit = this.tables.byKey.audit;
    api.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'AuditAppendAndQuery',
        actions: ['dynamodb:PutItem', 'dynamodb:Query'],
        resources: [audit.tableArn, `${audit.tableArn}/index/*`],
      }),
    );
    api.addEnvironment('AUDIT_RETENTION_DAYS', String(auditRetentionDays));
    api.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'HostQueues',
        actions: [
          'sqs:CreateQueue',
          'sqs:GetQueueUrl',
          'sqs:GetQueueAttributes',
          'sqs:SetQueueAttributes',
          'sqs:TagQueue',
          'sqs:DeleteQueue',
        ],
        resources: [hostQueueArn],
      }),
    );
    api.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'DatastoreSecrets',
        actions: [
          'secretsmanager:CreateSecret',
          'secretsmanager:PutSecretValue',
          'secretsmanager:GetSecretValue',
          'secretsmanager:DescribeSecret',
          'secretsmanager:DeleteSecret',
          'secretsmanager:RestoreSecret',
          'secretsmanager:TagResource',
        ],
        resources: [secretArnPattern],
      }),
    );
    dispatcher.grantInvoke(api);
    this.scheduling.grantManageSchedules(api);
    api.addEnvironment('SCHEDULE_GROUP', SCHEDULE_GROUP);
    api.addEnvironment('SCHEDULER_ROLE_ARN', this.scheduling.vmScheduleRole.roleArn);
    api.addEnvironment('HOST_DEAD_LETTER_QUEUE_ARN', this.hostDeadLetters.queue.queueArn);
  }

  /**
   * What scheduled actions, backup jobs and the sweep need of the dispatcher: it fires due
   * schedules (queueing backups, moving jobs on), deletes a finished action's EventBridge
   * schedule, ends executions that died holding a slot (DescribeExecution; VM unlocked, image to
   * ERROR), and stops one it started although a cancel had ended it meanwhile
   * (functions/operations/cancel.ts stopCancelledStart: StopExecution). The API learns the dispatcher's ARN: the target of the schedules it creates,
   * and may stop an execution it cancels (the same ending then).
   */
  private grantScheduledActions(dispatcher: LifeboatFunctions[string], machineNames: string[]): void {
    const byKey = this.tables.byKey;
    for (const table of [byKey.schedules, byKey.jobs, byKey.vms, byKey.images])
      table.grantReadWriteData(dispatcher);
    const executionArns = machineNames.map((name) =>
      this.formatArn({
        service: 'states',
        resource: 'execution',
        resourceName: `${name}:*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    );
    dispatcher.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['states:DescribeExecution', 'states:StopExecution'],
        resources: executionArns,
      }),
    );
    // `POST /executions/{id}/cancel`: the API stops an execution and reads how it ended.
    this.functions.Api?.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'CancelExecutions',
        actions: ['states:StopExecution', 'states:DescribeExecution'],
        resources: executionArns,
      }),
    );
    this.scheduling.grantManageSchedules(dispatcher);
    dispatcher.addEnvironment('SCHEDULE_GROUP', SCHEDULE_GROUP);
    this.functions.Api?.addEnvironment('SCHEDULE_TARGET_ARN', dispatcher.functionArn);
  }

  /** The dispatcher: the queue and counters, and starting executions of the three machines. */
  private grantDispatcher(dispatcher: LifeboatFunctions[string], machineArns: string[]): void {
    const byKey = this.tables.byKey;
    for (const table of [byKey.requests, byKey.executions, byKey.counters])
      table.grantReadWriteData(dispatcher);
    // It reads where a request runs (VM -> host, image -> VM) and the host's own limit.
    for (const table of [byKey.vms, byKey.hosts, byKey.images, byKey.datastores])
      table.grantReadData(dispatcher);
    // Host health: a silent host's state becomes OFFLINE (functions/operations/host-health.ts).
    byKey.hosts.grant(dispatcher, 'dynamodb:UpdateItem');
    dispatcher.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: machineArns }),
    );
  }
}
