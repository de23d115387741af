/**
 * Scheduled actions and the sweep in the CDK app: the API creates schedules that invoke the
 * dispatcher (it knows the dispatcher's ARN and the role to pass), the schedule role may invoke
 * the dispatcher only, and the dispatcher may describe executions and delete finished schedules.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { findLogicalId } from '#infra/definition.ts';
import { actionsOf, logicalIdByPath, type Synthesized, statementsOfRole, synthLifeboat } from './synth.ts';

let synth: Synthesized;
beforeAll(() => {
  synth = synthLifeboat();
});

function fnProps(fnId: string): Record<string, unknown> {
  const logicalId = findLogicalId(synth.json, 'AWS::Lambda::Function', fnId) ?? '';
  return synth.json.Resources[logicalId]?.Properties ?? {};
}

function roleOf(fnId: string): string {
  const role = fnProps(fnId).Role as { 'Fn::GetAtt': [string, string] };
  return role['Fn::GetAtt'][0];
}

describe('scheduled actions in AWS', () => {
  it('the API creates schedules targeting the dispatcher, in the lifeboat group, with the schedule role', () => {
    const env = (fnProps('Api').Environment as { Variables: Record<string, unknown> }).Variables;
    const dispatcherId = findLogicalId(synth.json, 'AWS::Lambda::Function', 'Dispatcher');
    expect(env.SCHEDULE_TARGET_ARN).toEqual({ 'Fn::GetAtt': [dispatcherId, 'Arn'] });
    expect(env.SCHEDULE_GROUP).toBe('lifeboat');
    expect(env.SCHEDULER_ROLE_ARN).toBeDefined();
  });

  it('the schedule role may invoke the dispatcher and nothing else', () => {
    const roleId = logicalIdByPath(synth.json, 'Scheduling/VmScheduleRole/Resource');
    const statements = statementsOfRole(synth.json, roleId);
    expect(statements.flatMap(actionsOf)).toEqual(['lambda:InvokeFunction']);
    const dispatcherId = findLogicalId(synth.json, 'AWS::Lambda::Function', 'Dispatcher');
    expect(JSON.stringify(statements)).toContain(dispatcherId);
    const apiId = findLogicalId(synth.json, 'AWS::Lambda::Function', 'Api') ?? 'none';
    expect(JSON.stringify(statements)).not.toContain(`"${apiId}"`);
  });

  it('the dispatcher may describe executions (the sweep), stop a cancelled one it started, and delete finished schedules', () => {
    const statements = statementsOfRole(synth.json, roleOf('Dispatcher'));
    const actions = statements.flatMap(actionsOf);
    expect(actions).toContain('states:DescribeExecution');
    // stopCancelledStart (functions/operations/cancel.ts): a start that lost the race to a cancel.
    expect(actions).toContain('states:StopExecution');
    expect(actions).toContain('scheduler:DeleteSchedule');
    const env = (fnProps('Dispatcher').Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env.SCHEDULE_GROUP).toBe('lifeboat');
  });
});
