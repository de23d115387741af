/**
 * The Backup, Restore and Maintenance state machines (JSONPath query language, so local mode's
 * interpreter runs the very definition synthesized here):
 *
 * ```
 * Admit -> RunOnHost (sqs waitForTaskToken, heartbeat) -> Commit -> Release -> Succeed
 *   | Catch                     | Catch                  | Catch
 *   v                           v                        v
 * MarkFailed <--------------- Cleanup (host task, best effort; its own failure is caught too)
 *   -> ReleaseFailed -> Fail (error and cause of the step that failed)
 * ```
 *
 * Maintenance (rm, monitor, stat, download, verify tasks) has no Cleanup: its host tasks leave
 * nothing behind, so RunOnHost and Commit failures go straight to MarkFailed.
 */
import { ArnFormat, Duration, RemovalPolicy, type Stack } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { MAINTENANCE_TASK_FIELDS, TASK_FIELDS } from '#core/contracts/tasks.ts';
import { TRANSIENT_ERRORS } from '#core/errors.ts';
import type { LifeboatConfig } from './config.ts';

/** The operations with a state machine of their own. */
export type OperationKind = 'Backup' | 'Restore' | 'Maintenance';

/** Fields of each machine's RunOnHost message, read from Admit's `task`. */
export const RUN_ON_HOST_FIELDS: Record<OperationKind, readonly string[]> = {
  Backup: TASK_FIELDS.backup,
  Restore: TASK_FIELDS.restore,
  Maintenance: MAINTENANCE_TASK_FIELDS,
};

/** Which operation a machine runs, and the functions of its own steps. */
export interface OperationProps {
  kind: OperationKind;
  /** Run a Cleanup host task after a failed RunOnHost or Commit (default true). */
  cleanup?: boolean;
  /** Fixed name, so the Lambdas can get the ARN without depending on the machine. */
  stateMachineName: string;
  admit: IFunction;
  commit: IFunction;
  markFailed: IFunction;
  release: IFunction;
  /** ARN pattern matching every host queue (`arn:...:lifeboat-host-*`): created at run time. */
  hostQueueArn: string;
  config: LifeboatConfig;
}

/** The state machine name of an operation in a stack: its ARN is known before it exists. */
export function stateMachineName(stackName: string, kind: OperationKind): string {
  return `${stackName}-${kind}`;
}

/** The ARN a state machine named `name` gets in `stack`. */
export function stateMachineArn(stack: Stack, name: string): string {
  return stack.formatArn({
    service: 'states',
    resource: 'stateMachine',
    resourceName: name,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * One operation's state machine. Its construct id is the kind (`Backup`, `Restore`), so the
 * synthesized resource path is `<stack>/<kind>/Resource`; the states live under `<kind>Steps`.
 */
export class OperationStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, props: OperationProps) {
    super(scope, `${props.kind}Steps`);
    const { config } = props;
    const fields = RUN_ON_HOST_FIELDS[props.kind];
    // Host queues are created by the API when a host registers: import "all of them" by ARN
    // pattern (this grants sqs:SendMessage on the pattern) and take the URL from Admit's output.
    const hostQueue = sqs.Queue.fromQueueAttributes(this, 'HostQueues', {
      queueArn: props.hostQueueArn,
      queueUrl: sfn.JsonPath.stringAt('$.admit.queueUrl'),
    });

    const admit = this.lambdaStep('Admit', props.admit, '$.admit');
    const commit = this.lambdaStep('Commit', props.commit, '$.commit');
    const release = this.lambdaStep('Release', props.release, '$.release');
    const markFailed = this.lambdaStep('MarkFailed', props.markFailed, '$.markFailed');
    const releaseFailed = this.lambdaStep('ReleaseFailed', props.release, '$.release');

    const runOnHost = new tasks.SqsSendMessage(this, 'RunOnHost', {
      queue: hostQueue,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      messageBody: taskMessage(fields, '$.admit.task', 'RunOnHost'),
      heartbeatTimeout: sfn.Timeout.duration(Duration.seconds(config.heartbeatSeconds)),
      taskTimeout: sfn.Timeout.duration(Duration.seconds(config.hostTaskTimeoutSeconds)),
      resultPath: '$.host',
    });
    runOnHost.addRetry({
      errors: [...TRANSIENT_ERRORS],
      interval: Duration.seconds(config.hostRetryIntervalSeconds),
      backoffRate: 2,
      maxAttempts: config.hostRetryMaxAttempts,
    });

    const fail = new sfn.Fail(this, 'Fail', { errorPath: '$.error.Error', causePath: '$.error.Cause' });
    const catchAll = [sfn.Errors.ALL];
    admit.addCatch(markFailed, { errors: catchAll, resultPath: '$.error' });
    if (props.cleanup ?? true) {
      const cleanup = new tasks.SqsSendMessage(this, 'Cleanup', {
        queue: hostQueue,
        integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        messageBody: taskMessage(TASK_FIELDS.cleanup, '$.admit.cleanup', 'Cleanup', {
          failedTaskId: sfn.JsonPath.format('{}/RunOnHost', sfn.JsonPath.executionName),
        }),
        taskTimeout: sfn.Timeout.duration(Duration.seconds(600)),
        resultPath: '$.cleanup',
      });
      runOnHost.addCatch(cleanup, { errors: catchAll, resultPath: '$.error' });
      commit.addCatch(cleanup, { errors: catchAll, resultPath: '$.error' });
      // Cleanup is best effort: its failure must not hide the original error in $.error.
      cleanup.addCatch(markFailed, { errors: catchAll, resultPath: '$.cleanupError' });
      cleanup.next(markFailed);
    } else {
      runOnHost.addCatch(markFailed, { errors: catchAll, resultPath: '$.error' });
      commit.addCatch(markFailed, { errors: catchAll, resultPath: '$.error' });
    }
    // Even when recording the failure breaks, the slot must be given back.
    markFailed.addCatch(releaseFailed, { errors: catchAll, resultPath: '$.markFailedError' });
    markFailed.next(releaseFailed).next(fail);

    const definition = admit.next(runOnHost).next(commit).next(release).next(new sfn.Succeed(this, 'Done'));

    const logGroup = new logs.LogGroup(this, 'Logs', {
      // The vendedlogs prefix keeps the log group's resource policy from growing per machine.
      logGroupName: `/aws/vendedlogs/states/${props.stateMachineName}`,
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(scope, props.kind, {
      stateMachineName: props.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      queryLanguage: sfn.QueryLanguage.JSON_PATH,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      comment: `Lifeboat ${props.kind.toLowerCase()}: admit, run on the host, commit, release`,
      tracingEnabled: true,
      // No execution data in the logs: the inputs of RunOnHost and Cleanup hold task tokens (and
      // sealed secrets), and a task token lets whoever reads it answer for the host. The
      // execution history (states:GetExecutionHistory, for admins) keeps the full payloads.
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
  }

  /** A Lambda step: the whole state as input, the function's own result under `resultPath`. */
  private lambdaStep(id: string, fn: IFunction, resultPath: string): tasks.LambdaInvoke {
    const step = new tasks.LambdaInvoke(this, id, {
      lambdaFunction: fn,
      // Resource = the function ARN, so local mode maps it back to the manifest entry.
      payloadResponseOnly: true,
      resultPath,
    });
    step.addRetry({
      errors: [...TRANSIENT_ERRORS],
      interval: Duration.seconds(2),
      backoffRate: 2,
      maxAttempts: 4,
    });
    return step;
  }
}

/**
 * A runner task message: every field of its kind read from `source`, plus the task id
 * (`<execution name>/<state>`, the runner's journal key) and the task token.
 */
function taskMessage(
  fields: readonly string[],
  source: string,
  stateName: string,
  extra: Record<string, string> = {},
): sfn.TaskInput {
  const body: Record<string, string> = {};
  for (const field of fields) body[field] = sfn.JsonPath.stringAt(`${source}.${field}`);
  return sfn.TaskInput.fromObject({
    ...body,
    taskId: sfn.JsonPath.format(`{}/${stateName}`, sfn.JsonPath.executionName),
    ...extra,
    token: sfn.JsonPath.taskToken,
  });
}
