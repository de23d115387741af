/**
 * EventBridge Scheduler: the schedule group `lifeboat`, the dispatcher's once-a-minute wake-up
 * (requests never wait longer than that even if a wake-up Invoke is lost, and dead executions
 * are swept), and the role the API hands to the schedules it creates in the group for scheduled
 * actions (VMs and backup jobs): they invoke the dispatcher, which fires whatever is due.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';

/** Name of the schedule group holding every Lifeboat schedule. */
export const SCHEDULE_GROUP = 'lifeboat';

export interface SchedulingProps {
  dispatcher: IFunction;
  /** Kept for callers; scheduled actions target the dispatcher, not the API. */
  api?: IFunction;
}

export class Scheduling extends Construct {
  readonly group: scheduler.ScheduleGroup;
  /** Role the scheduled-action schedules run as; the API passes it when it creates one. */
  readonly vmScheduleRole: iam.Role;

  constructor(scope: Construct, id: string, props: SchedulingProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.group = new scheduler.ScheduleGroup(this, 'Group', {
      scheduleGroupName: SCHEDULE_GROUP,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const schedulerPrincipal = new iam.ServicePrincipal('scheduler.amazonaws.com', {
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    });
    // Our own role (not the target's generated one) keeps every scheduler role in this construct.
    const dispatchRole = new iam.Role(this, 'DispatchRole', {
      description: 'Assumed by EventBridge Scheduler to wake the Lifeboat dispatcher',
      assumedBy: schedulerPrincipal,
    });
    new scheduler.Schedule(this, 'DispatchEveryMinute', {
      scheduleGroup: this.group,
      description: 'Wakes the Lifeboat dispatcher so queued requests start even if a wake-up was lost',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      target: new targets.LambdaInvoke(props.dispatcher, {
        role: dispatchRole,
        input: scheduler.ScheduleTargetInput.fromObject({ source: 'lifeboat.schedule', reason: 'tick' }),
        // A missed tick is harmless: the next one comes a minute later.
        retryAttempts: 0,
        maxEventAge: Duration.minutes(1),
      }),
    });

    this.vmScheduleRole = new iam.Role(this, 'VmScheduleRole', {
      description: 'Assumed by EventBridge Scheduler to run scheduled actions (invokes the dispatcher)',
      assumedBy: schedulerPrincipal,
    });
    props.dispatcher.grantInvoke(this.vmScheduleRole);
  }

  /** ARN pattern of the schedules in the group. */
  scheduleArnPattern(): string {
    return Stack.of(this).formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${SCHEDULE_GROUP}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  /** Lets `grantee` manage schedules in the group and pass the per-VM schedule role, only to Scheduler. */
  grantManageSchedules(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: [
        'scheduler:CreateSchedule',
        'scheduler:UpdateSchedule',
        'scheduler:DeleteSchedule',
        'scheduler:GetSchedule',
      ],
      resourceArns: [this.scheduleArnPattern()],
    });
    iam.Grant.addToPrincipal({
      grantee,
      // ListSchedules is not resource-scoped.
      actions: ['scheduler:ListSchedules'],
      resourceArns: ['*'],
    });
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.vmScheduleRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
  }
}
