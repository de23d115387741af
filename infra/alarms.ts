/**
 * CloudWatch alarms to an SNS topic: failed and timed-out executions of each state machine,
 * Lambda errors per function, any message in a dead-letter queue, and Lifeboat's own figures
 * (the EMF metrics of functions/metrics.ts): a failed backup, a failed verification, a VM
 * missing its scheduled backup. The same topic carries the notifications of functions/notify.ts
 * (the stack gives it to the functions that notify as NOTIFY_TOPIC_ARN).
 *
 * Host queues are created by the API at run time, so their dead letters all go to one
 * stack-created queue (see host-dead-letters.ts): one alarm covers every host, present and future.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { METRIC, NAMESPACE } from '../functions/metrics.ts';

export interface AlarmsProps {
  stateMachines: Record<string, StateMachine>;
  functions: Record<string, IFunction>;
  /** Dead-letter queues by alarm id prefix: each alarms as soon as it holds a message. */
  deadLetterQueues: Record<string, IQueue>;
}

export class Alarms extends Construct {
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'Lifeboat alarms', enforceSSL: true });
    const action = new SnsAction(this.topic);
    const period = Duration.minutes(5);
    // Threshold 1 with >= on counts: "more than zero".
    const add = (alarmId: string, metric: cloudwatch.IMetric, description: string): void => {
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      alarm.addAlarmAction(action);
    };
    for (const [kind, machine] of Object.entries(props.stateMachines)) {
      add(`${kind}Failed`, machine.metricFailed({ period }), `${kind} executions failed`);
      add(`${kind}TimedOut`, machine.metricTimedOut({ period }), `${kind} executions timed out`);
    }
    for (const [fnId, fn] of Object.entries(props.functions)) {
      add(`${fnId}Errors`, fn.metricErrors({ period }), `Lambda ${fnId} raised errors`);
    }
    // Lifeboat's metrics, without dimensions: the deployment's totals (every datastore's).
    const lifeboat = (metricName: string, statistic: string, over = period) =>
      new cloudwatch.Metric({ namespace: NAMESPACE, metricName, statistic, period: over });
    add(
      'BackupsFailed',
      lifeboat(METRIC.backupsFailed, cloudwatch.Stats.SUM),
      'a backup failed (BackupsFailed > 0)',
    );
    add(
      'VerifyFailures',
      lifeboat(METRIC.verifyFailures, cloudwatch.Stats.SUM),
      'a verification found a fault in a backup (VerifyFailures > 0)',
    );
    // A gauge published by every missed-backup check (MISSED_CHECK_MINUTES, default 5): the
    // longer period always holds one, and Maximum keeps the alarm up while any VM is missing.
    add(
      'MissedBackups',
      lifeboat(METRIC.missedBackups, cloudwatch.Stats.MAXIMUM, Duration.minutes(15)),
      'a VM has not backed up successfully within twice its schedule period (MissedBackups > 0)',
    );
    for (const [queueId, queue] of Object.entries(props.deadLetterQueues)) {
      // Maximum, not Average: one dead letter in the period is enough.
      add(
        `${queueId}Visible`,
        queue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
        `${queueId}: a message was dead-lettered after repeated failed receives (its body names the task and VM)`,
      );
    }
  }
}
