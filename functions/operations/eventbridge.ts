/**
 * The EventBridge Scheduler twin of each scheduled action in AWS: one schedule in the group
 * SCHEDULE_GROUP, at the action's times (UTC), invoking the dispatcher with
 * `{ source: "lifeboat.schedule", scheduleId }`. The dispatcher fires whatever is due in the
 * schedules table, so these only make the timing exact; its own once-a-minute run catches
 * anything a lost invocation missed. Local mode sets SCHEDULE_GROUP too and serves these calls
 * (local/scheduler/server.ts); only a setup without SCHEDULE_GROUP (unit tests) creates none.
 */
import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { awsScheduleExpression, type ScheduleSpec } from '#core/schedule.ts';
import { region } from '#platform/aws.ts';
import { required } from '../env.ts';

let client: SchedulerClient | undefined;
function scheduler(): SchedulerClient {
  client ??= new SchedulerClient({ region: region() });
  return client;
}

/** Whether this deployment mirrors scheduled actions into EventBridge Scheduler. */
export function usesEventBridge(): boolean {
  return Boolean(process.env.SCHEDULE_GROUP);
}

/** The EventBridge schedule name of scheduled action `id`. */
export function awsScheduleName(id: number): string {
  return `lifeboat-action-${id}`;
}

/** Create the schedule of action `id` (an existing one of the same name is kept). Returns its name. */
export async function createAwsSchedule(id: number, spec: ScheduleSpec): Promise<string | undefined> {
  if (!usesEventBridge()) return undefined;
  const name = awsScheduleName(id);
  try {
    await scheduler().send(
      new CreateScheduleCommand({
        Name: name,
        GroupName: required('SCHEDULE_GROUP'),
        ScheduleExpression: awsScheduleExpression(spec),
        ScheduleExpressionTimezone: 'UTC',
        ...(spec.end && 'date' in spec.end && { EndDate: new Date(spec.end.date) }),
        FlexibleTimeWindow: { Mode: 'OFF' },
        // One-shot schedules remove themselves; counted ones are deleted by the dispatcher.
        ActionAfterCompletion: spec.repeat ? 'NONE' : 'DELETE',
        Target: {
          Arn: required('SCHEDULE_TARGET_ARN'),
          RoleArn: required('SCHEDULER_ROLE_ARN'),
          Input: JSON.stringify({ source: 'lifeboat.schedule', scheduleId: id }),
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 300 },
        },
      }),
    );
  } catch (err) {
    if (!(err instanceof ConflictException)) throw err;
  }
  return name;
}

/** Delete an EventBridge schedule; a missing one is fine. */
export async function deleteAwsSchedule(name: string | undefined): Promise<void> {
  if (!name || !usesEventBridge()) return;
  try {
    await scheduler().send(new DeleteScheduleCommand({ Name: name, GroupName: required('SCHEDULE_GROUP') }));
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
  }
}
