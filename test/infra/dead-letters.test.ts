/**
 * The shared host dead-letter queue: created by the stack, alarmed, named to the API only by its
 * ARN, and out of reach of every `lifeboat-host-*` grant.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '#functions/manifest.ts';
import { findLogicalId } from '#infra/definition.ts';
import {
  actionsOf,
  logicalIdByPath,
  logicalIdsOfType,
  type StatementJson,
  type Synthesized,
  synthLifeboat,
  withStubApp,
} from './synth.ts';

let synth: Synthesized;
let dlqId: string;
beforeAll(() => {
  synth = synthLifeboat();
  dlqId = logicalIdByPath(synth.json, 'HostDeadLetters/Queue/Resource');
});

function envOf(fnId: string): Record<string, unknown> {
  const logicalId = findLogicalId(synth.json, 'AWS::Lambda::Function', fnId) ?? '';
  const props = synth.json.Resources[logicalId]?.Properties ?? {};
  return (props.Environment as { Variables: Record<string, unknown> }).Variables;
}

/** Every identity-policy statement in the template. */
function allStatements(): StatementJson[] {
  return Object.values(synth.json.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
    .flatMap(
      (r) => (r.Properties?.PolicyDocument as { Statement?: StatementJson[] } | undefined)?.Statement ?? [],
    );
}

/** Every identity-policy statement in the template that grants an SQS action. */
function sqsStatements(): StatementJson[] {
  return allStatements().filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:') || a === '*'));
}

/**
 * The queue-name part of each resource of a statement, as a regular expression: `*` and IAM
 * policy variables (`${aws:PrincipalTag/...}`, any value a caller's tag may hold) match anything.
 */
function queueNamePatterns(statement: StatementJson): (RegExp | 'reference')[] {
  const resources = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
  return resources.map((resource) => {
    const join = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    const last = join ? join[1][join[1].length - 1] : resource;
    if (typeof last !== 'string') return 'reference';
    // Policy variables (`@`, not a queue name character) first: they hold colons of their own.
    const masked = last.replace(/\$\{[^}]*\}/g, '@');
    const escaped = masked
      .slice(masked.lastIndexOf(':') + 1)
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\*|@/g, '.*');
    return new RegExp(`^${escaped}$`);
  });
}

describe('shared host dead-letter queue', () => {
  it('is one queue named lifeboat-dlq-hosts, encrypted, TLS only, keeping dead letters 14 days', () => {
    synth.template.resourceCountIs('AWS::SQS::Queue', 1);
    synth.template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'lifeboat-dlq-hosts',
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1_209_600,
    });
    synth.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: dlqId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('alarms to the alarm topic as soon as it holds a message', () => {
    const [topicId] = logicalIdsOfType(synth.json, 'AWS::SNS::Topic');
    const alarms = logicalIdsOfType(synth.json, 'AWS::CloudWatch::Alarm')
      .map((id) => synth.json.Resources[id]?.Properties ?? {})
      .filter((a) => a.Namespace === 'AWS/SQS');
    expect(alarms).toHaveLength(1);
    expect(alarms[0]).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }],
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: topicId }],
    });
  });

  it('is named to the API by its ARN, and to no other function', () => {
    expect(envOf('Api').HOST_DEAD_LETTER_QUEUE_ARN).toEqual({ 'Fn::GetAtt': [dlqId, 'Arn'] });
    for (const spec of FUNCTIONS.filter((f) => f.id !== 'Api')) {
      expect(envOf(spec.id).HOST_DEAD_LETTER_QUEUE_ARN, spec.id).toBeUndefined();
    }
    // The per-host DLQ alarms the API was to manage are gone with the per-host DLQs.
    expect(envOf('Api').ALARM_TOPIC_ARN).toBeUndefined();
    const cloudwatch = allStatements().filter((s) => actionsOf(s).some((a) => a.startsWith('cloudwatch:')));
    expect(cloudwatch).toEqual([]);
  });

  it('is out of reach of every SQS grant: API, state machines and runners match host queues only', () => {
    const statements = sqsStatements();
    // API (manage host queues), three state machines (send), runner (receive its own).
    expect(statements.length).toBeGreaterThanOrEqual(5);
    for (const statement of statements) {
      for (const pattern of queueNamePatterns(statement)) {
        // A Ref/GetAtt resource would name a stack queue directly: the only one is the DLQ.
        expect(pattern, JSON.stringify(statement.Resource)).not.toBe('reference');
        expect(pattern, JSON.stringify(statement.Resource)).toBeInstanceOf(RegExp);
        expect((pattern as RegExp).test('lifeboat-dlq-hosts'), String(pattern)).toBe(false);
        expect((pattern as RegExp).test('lifeboat-host-7'), String(pattern)).toBe(true);
      }
    }
  });

  it('refuses a dead-letter queue name under the host queue prefix', () => {
    const build = (context: Record<string, unknown>) => withStubApp(context, () => {});
    expect(() => build({ hostDeadLetterQueueName: 'lifeboat-host-dlq' })).toThrow(
      /hostDeadLetterQueueName "lifeboat-host-dlq" must not start with hostQueuePrefix "lifeboat-host-"/,
    );
    expect(() => build({ hostQueuePrefix: 'lifeboat-' })).toThrow(/must not start with hostQueuePrefix/);
    const renamed = synthLifeboat({ hostQueuePrefix: 'lb2-host-', hostDeadLetterQueueName: 'lb2-dlq' });
    renamed.template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'lb2-dlq' });
  });
});
