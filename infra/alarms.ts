/**
 * CloudWatch alarms to an SNS topic: failed and timed-out executions of each state machine,
 * Lambda errors per function.
 *
 * Dead-letter queues: the host queues and their DLQs (`lifeboat-host-N-dlq`) are created by the
 * API at run time, and CloudWatch alarms cannot use SEARCH expressions, so the stack cannot
 * alarm on "every DLQ" by itself. The API creates one alarm per DLQ when it registers a host
 * (`PutMetricAlarm`, name `lifeboat-host-N-dlq-visible`, ApproximateNumberOfMessagesVisible > 0,
 * action ALARM_TOPIC_ARN) and deletes it with the host; {@link Alarms.grantManageHostAlarms}
 * gives it exactly that.
 */
import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

export interface AlarmsProps {
  stateMachines: Record<string, StateMachine>;
  functions: Record<string, IFunction>;
  /** Host queue name prefix: host DLQ alarms are named after their queue. */
  hostQueuePrefix: string;
}

export class Alarms extends Construct {
  readonly topic: sns.Topic;
  private readonly hostQueuePrefix: string;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.hostQueuePrefix = props.hostQueuePrefix;
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'Lifeboat alarms', enforceSSL: true });
    const action = new SnsAction(this.topic);
    const period = Duration.minutes(5);
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
  }

  /** Lets `grantee` create and delete the per-host DLQ alarms (and only those). */
  grantManageHostAlarms(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['cloudwatch:PutMetricAlarm', 'cloudwatch:DeleteAlarms', 'cloudwatch:DescribeAlarms'],
      resourceArns: [
        Stack.of(this).formatArn({
          service: 'cloudwatch',
          resource: 'alarm',
          resourceName: `${this.hostQueuePrefix}*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
    });
  }
}
