import { beforeAll, describe, expect, it } from 'vitest';
import { MAINTENANCE_TASK_FIELDS, TASK_FIELDS } from '#core/contracts/tasks.ts';
import { TRANSIENT_ERRORS } from '#core/errors.ts';
import {
  type AslDefinition,
  type AslState,
  findLogicalId,
  functionIdOf,
  placeholder,
  resolveDefinition,
  type TokenResolver,
} from '#infra/definition.ts';
import { type Synthesized, statementsOfRole, synthLifeboat } from './synth.ts';

const resolver: TokenResolver = (token) =>
  token.kind === 'Ref' && token.logicalId === 'AWS::Partition' ? 'aws' : placeholder(token);

let synth: Synthesized;
let tuned: Synthesized;
beforeAll(() => {
  synth = synthLifeboat();
  tuned = synthLifeboat({ heartbeatSeconds: 45, hostTaskTimeoutSeconds: '3600' });
});

function definition(s: Synthesized, kind: 'Backup' | 'Restore' | 'Maintenance'): AslDefinition {
  const logicalId = findLogicalId(s.json, 'AWS::StepFunctions::StateMachine', kind);
  if (!logicalId) throw new Error(`no ${kind} state machine`);
  return resolveDefinition(s.json, logicalId, resolver);
}

function state(asl: AslDefinition, name: string): AslState {
  const found = asl.States[name];
  if (!found) throw new Error(`no state ${name}; states: ${Object.keys(asl.States).join(', ')}`);
  return found;
}

/** The manifest id of the Lambda a Task state invokes, through its GetAtt placeholder. */
function invokedFunction(s: Synthesized, task: AslState): string | undefined {
  const match = /^\{\{GetAtt:(\w+)\.Arn\}\}$/.exec(String(task.Resource));
  return match?.[1] ? functionIdOf(s.json, match[1]) : undefined;
}

const operations = [
  { kind: 'Backup', admit: 'AdmitBackup', commit: 'CommitBackup', fields: TASK_FIELDS.backup },
  { kind: 'Restore', admit: 'AdmitRestore', commit: 'CommitRestore', fields: TASK_FIELDS.restore },
] as const;

describe.each(operations)('$kind state machine', ({ kind, admit, commit, fields }) => {
  it('uses JSONPath and starts with Admit, invoking the admit function with the whole state', () => {
    const asl = definition(synth, kind);
    expect(asl.QueryLanguage).toBe('JSONPath');
    expect(asl.StartAt).toBe('Admit');
    const step = state(asl, 'Admit');
    expect(invokedFunction(synth, step)).toBe(admit);
    expect(step.Parameters).toBeUndefined();
    expect(step.ResultPath).toBe('$.admit');
    expect(step.Next).toBe('RunOnHost');
    expect(step.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'MarkFailed' }]);
  });

  it('sends the host task to the queue from Admit and waits for the task token', () => {
    const run = state(definition(synth, kind), 'RunOnHost');
    expect(run.Resource).toBe('arn:aws:states:::sqs:sendMessage.waitForTaskToken');
    expect(run.HeartbeatSeconds).toBe(120);
    expect(run.TimeoutSeconds).toBe(86_400);
    expect(run.ResultPath).toBe('$.host');
    expect(run.Next).toBe('Commit');
    const params = run.Parameters as { 'QueueUrl.$': string; MessageBody: Record<string, string> };
    expect(params['QueueUrl.$']).toBe('$.admit.queueUrl');
    const expected: Record<string, string> = {};
    for (const field of fields) expected[`${field}.$`] = `$.admit.task.${field}`;
    expect(params.MessageBody).toEqual({
      ...expected,
      'taskId.$': "States.Format('{}/RunOnHost', $$.Execution.Name)",
      'token.$': '$$.Task.Token',
    });
  });

  it('retries the host task on exactly the transient error names, and sends any other failure to Cleanup', () => {
    const run = state(definition(synth, kind), 'RunOnHost');
    const retry = run.Retry as { ErrorEquals: string[]; MaxAttempts: number }[];
    expect(retry).toHaveLength(1);
    expect(retry[0]?.ErrorEquals).toEqual([...TRANSIENT_ERRORS]);
    expect(retry[0]?.MaxAttempts).toBeGreaterThan(1);
    expect(run.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Cleanup' }]);
  });

  it('commits, releases and succeeds; a failed commit runs Cleanup', () => {
    const asl = definition(synth, kind);
    const commitStep = state(asl, 'Commit');
    expect(invokedFunction(synth, commitStep)).toBe(commit);
    expect(commitStep.ResultPath).toBe('$.commit');
    expect(commitStep.Next).toBe('Release');
    expect(commitStep.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Cleanup' },
    ]);
    const release = state(asl, 'Release');
    expect(invokedFunction(synth, release)).toBe('Release');
    expect(release.ResultPath).toBe('$.release');
    expect(state(asl, String(release.Next)).Type).toBe('Succeed');
  });

  it('cleans up on the host, keeping the original error, then marks the operation failed', () => {
    const cleanup = state(definition(synth, kind), 'Cleanup');
    expect(cleanup.Resource).toBe('arn:aws:states:::sqs:sendMessage.waitForTaskToken');
    expect(cleanup.TimeoutSeconds).toBe(600);
    expect(cleanup.ResultPath).toBe('$.cleanup');
    expect(cleanup.Next).toBe('MarkFailed');
    expect(cleanup.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.cleanupError', Next: 'MarkFailed' },
    ]);
    const params = cleanup.Parameters as { 'QueueUrl.$': string; MessageBody: Record<string, string> };
    expect(params['QueueUrl.$']).toBe('$.admit.queueUrl');
    const expected: Record<string, string> = {};
    for (const field of TASK_FIELDS.cleanup) expected[`${field}.$`] = `$.admit.cleanup.${field}`;
    expect(params.MessageBody).toEqual({
      ...expected,
      'taskId.$': "States.Format('{}/Cleanup', $$.Execution.Name)",
      'failedTaskId.$': "States.Format('{}/RunOnHost', $$.Execution.Name)",
      'token.$': '$$.Task.Token',
    });
  });

  it('records the failure, gives the slot back and fails with the original error', () => {
    const asl = definition(synth, kind);
    const markFailed = state(asl, 'MarkFailed');
    expect(invokedFunction(synth, markFailed)).toBe('MarkFailed');
    expect(markFailed.ResultPath).toBe('$.markFailed');
    expect(markFailed.Next).toBe('ReleaseFailed');
    const releaseFailed = state(asl, 'ReleaseFailed');
    expect(invokedFunction(synth, releaseFailed)).toBe('Release');
    expect(releaseFailed.ResultPath).toBe('$.release');
    const fail = state(asl, String(releaseFailed.Next));
    expect(fail).toEqual({ Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' });
  });

  it('takes the heartbeat and the host task timeout from CDK context', () => {
    const run = state(definition(tuned, kind), 'RunOnHost');
    expect(run.HeartbeatSeconds).toBe(45);
    expect(run.TimeoutSeconds).toBe(3600);
  });

  it('may send to host queues only, logs every execution without its data (task tokens) and traces', () => {
    const logicalId = findLogicalId(synth.json, 'AWS::StepFunctions::StateMachine', kind) ?? '';
    const props = synth.json.Resources[logicalId]?.Properties ?? {};
    expect(props.StateMachineName).toBe(`Lifeboat-${kind}`);
    expect(props.TracingConfiguration).toEqual({ Enabled: true });
    expect(props.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: false });
    const roleId = (props.RoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0] ?? '';
    const send = statementsOfRole(synth.json, roleId).filter((st) =>
      JSON.stringify(st.Action).includes('sqs:'),
    );
    expect(send).toHaveLength(1);
    expect(send[0]?.Action).toBe('sqs:SendMessage');
    expect(JSON.stringify(send[0]?.Resource)).toContain(':lifeboat-host-*');
  });
});

describe('Maintenance state machine (delete, download, verify, monitor)', () => {
  const catchToMarkFailed = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'MarkFailed' }];

  it('sends every field of the rm, monitor, stat, download and verify tasks from Admit', () => {
    const asl = definition(synth, 'Maintenance');
    expect(asl.QueryLanguage).toBe('JSONPath');
    expect(invokedFunction(synth, state(asl, 'Admit'))).toBe('AdmitMaintenance');
    const run = state(asl, 'RunOnHost');
    expect(run.Resource).toBe('arn:aws:states:::sqs:sendMessage.waitForTaskToken');
    expect(run.HeartbeatSeconds).toBe(120);
    const params = run.Parameters as { 'QueueUrl.$': string; MessageBody: Record<string, string> };
    expect(params['QueueUrl.$']).toBe('$.admit.queueUrl');
    for (const kind of ['rm', 'monitor', 'stat', 'download', 'verify'] as const) {
      for (const field of TASK_FIELDS[kind]) {
        expect(params.MessageBody[`${field}.$`], `${kind}.${field}`).toBe(`$.admit.task.${field}`);
      }
    }
    expect(Object.keys(params.MessageBody).sort()).toEqual(
      [...MAINTENANCE_TASK_FIELDS.map((f) => `${f}.$`), 'taskId.$', 'token.$'].sort(),
    );
    expect(params.MessageBody['taskId.$']).toBe("States.Format('{}/RunOnHost', $$.Execution.Name)");
  });

  it('has no Cleanup: host and commit failures go straight to MarkFailed, then Release and Fail', () => {
    const asl = definition(synth, 'Maintenance');
    expect(asl.States.Cleanup).toBeUndefined();
    expect(state(asl, 'Admit').Catch).toEqual(catchToMarkFailed);
    expect(state(asl, 'RunOnHost').Catch).toEqual(catchToMarkFailed);
    const retry = state(asl, 'RunOnHost').Retry as { ErrorEquals: string[] }[];
    expect(retry[0]?.ErrorEquals).toEqual([...TRANSIENT_ERRORS]);
    const commit = state(asl, 'Commit');
    expect(invokedFunction(synth, commit)).toBe('CommitMaintenance');
    expect(commit.Catch).toEqual(catchToMarkFailed);
    expect(invokedFunction(synth, state(asl, 'Release'))).toBe('Release');
    expect(state(asl, 'MarkFailed').Next).toBe('ReleaseFailed');
    expect(state(asl, String(state(asl, 'ReleaseFailed').Next))).toEqual({
      Type: 'Fail',
      ErrorPath: '$.error.Error',
      CausePath: '$.error.Cause',
    });
  });

  it('is named Lifeboat-Maintenance and may send to host queues only', () => {
    const logicalId = findLogicalId(synth.json, 'AWS::StepFunctions::StateMachine', 'Maintenance') ?? '';
    const props = synth.json.Resources[logicalId]?.Properties ?? {};
    expect(props.StateMachineName).toBe('Lifeboat-Maintenance');
    const roleId = (props.RoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0] ?? '';
    const send = statementsOfRole(synth.json, roleId).filter((st) =>
      JSON.stringify(st.Action).includes('sqs:'),
    );
    expect(send.map((st) => st.Action)).toEqual(['sqs:SendMessage']);
    expect(JSON.stringify(send[0]?.Resource)).toContain(':lifeboat-host-*');
  });
});
