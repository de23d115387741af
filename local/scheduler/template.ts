/**
 * The schedules the stack itself defines (`AWS::Scheduler::Schedule` resources of the
 * synthesized template: today the dispatcher's once-a-minute tick), as local mode creates them
 * at start, as the deployment does: their expression, zone, window, input and target taken from
 * the template, the target pointed at the local function.
 */
import type { CfnTemplate, CfnToken } from '#infra/definition.ts';
import { LOCAL_ACCOUNT } from '../config.ts';
import { localSubstitution } from '../stepfunctions/definitions.ts';
import type { StoredSchedule } from './schedules.ts';

/** A `{ "Fn::GetAtt": [id, attr] }` or `{ Ref: id }` value as a token, else undefined. */
function tokenOf(value: unknown): CfnToken | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const v = value as { 'Fn::GetAtt'?: unknown; Ref?: unknown };
  const getAtt = v['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string' && typeof getAtt[1] === 'string') {
    return { kind: 'GetAtt', logicalId: getAtt[0], attribute: getAtt[1] };
  }
  if (typeof v.Ref === 'string') return { kind: 'Ref', logicalId: v.Ref };
  return undefined;
}

const text = (value: unknown, what: string): string => {
  if (typeof value !== 'string') throw new Error(`template schedule: ${what} is not a literal string`);
  return value;
};

/**
 * Every schedule of `template`, named by its logical id. `tickSeconds` other than 60 replaces a
 * `rate(1 minute)` (local mode's `schedulerIntervalSeconds`; under a minute it takes the local
 * `rate(N seconds)`, which AWS would refuse).
 */
export function templateSchedules(template: CfnTemplate, region: string, tickSeconds = 60): StoredSchedule[] {
  const substitute = localSubstitution(template, region);
  const now = Date.now();
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::Scheduler::Schedule')
    .map(([logicalId, r]) => {
      const p = r.Properties ?? {};
      const target = (p.Target ?? {}) as Record<string, unknown>;
      const arnToken = tokenOf(target.Arn);
      const arn = arnToken ? substitute(arnToken) : text(target.Arn, `${logicalId} Target.Arn`);
      const roleToken = tokenOf(target.RoleArn);
      const roleArn = roleToken
        ? `arn:aws:iam::${LOCAL_ACCOUNT}:role/${roleToken.logicalId}`
        : text(target.RoleArn, `${logicalId} Target.RoleArn`);
      let expression = text(p.ScheduleExpression, `${logicalId} ScheduleExpression`);
      let localSeconds = false;
      if (expression === 'rate(1 minute)' && tickSeconds !== 60) {
        const minutes = tickSeconds / 60;
        localSeconds = !Number.isInteger(minutes);
        expression = localSeconds
          ? `rate(${tickSeconds} ${tickSeconds === 1 ? 'second' : 'seconds'})`
          : `rate(${minutes} minutes)`;
      }
      const window = (p.FlexibleTimeWindow ?? { Mode: 'OFF' }) as StoredSchedule['FlexibleTimeWindow'];
      return {
        Name: typeof p.Name === 'string' ? p.Name : logicalId,
        GroupName: typeof p.GroupName === 'string' ? p.GroupName : 'default',
        ScheduleExpression: expression,
        ScheduleExpressionTimezone:
          typeof p.ScheduleExpressionTimezone === 'string' ? p.ScheduleExpressionTimezone : 'UTC',
        ...(typeof p.Description === 'string' && { Description: p.Description }),
        State: p.State === 'DISABLED' ? 'DISABLED' : 'ENABLED',
        ActionAfterCompletion: 'NONE',
        FlexibleTimeWindow: window,
        Target: {
          Arn: arn,
          RoleArn: roleArn,
          ...(typeof target.Input === 'string' && { Input: target.Input }),
        },
        CreationDate: now,
        LastModificationDate: now,
        localSeconds,
      } satisfies StoredSchedule;
    });
}
