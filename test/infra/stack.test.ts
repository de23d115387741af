import { Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '#functions/api/routes.ts';
import { FUNCTIONS } from '#functions/manifest.ts';
import { TABLES } from '#functions/tables.ts';
import { findLogicalId } from '#infra/definition.ts';
import {
  actionsOf,
  logicalIdByPath,
  logicalIdsOfType,
  type StatementJson,
  type Synthesized,
  statementsOfRole,
  synthLifeboat,
  withStubApp,
} from './synth.ts';

let synth: Synthesized;
beforeAll(() => {
  synth = synthLifeboat();
});

function fnLogicalId(id: string): string {
  const logicalId = findLogicalId(synth.json, 'AWS::Lambda::Function', id);
  if (!logicalId) throw new Error(`no function ${id}`);
  return logicalId;
}

function fnProps(id: string): Record<string, unknown> {
  return synth.json.Resources[fnLogicalId(id)]?.Properties ?? {};
}

function fnStatements(id: string): StatementJson[] {
  const role = fnProps(id).Role as { 'Fn::GetAtt': string[] };
  return statementsOfRole(synth.json, role['Fn::GetAtt'][0] ?? '');
}

function fnActions(id: string): string[] {
  return fnStatements(id).flatMap(actionsOf);
}

describe('DynamoDB tables', () => {
  it.each(TABLES.map((spec) => [spec.key, spec] as const))(
    '%s: on demand, PITR, encrypted, retained, with its indexes and TTL',
    (_key, spec) => {
      const gsis = spec.indexes.map((index) => ({
        IndexName: index.name,
        KeySchema: [
          { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
          ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' }] : []),
        ],
        Projection: { ProjectionType: 'ALL' },
      }));
      synth.template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        Properties: {
          KeySchema: [{ AttributeName: spec.partitionKey.name, KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
          GlobalSecondaryIndexes: gsis.length ? gsis : Match.absent(),
          TimeToLiveSpecification: spec.ttlAttribute
            ? { AttributeName: spec.ttlAttribute, Enabled: true }
            : Match.absent(),
        },
      });
    },
  );

  it('creates exactly one table per TABLES entry', () => {
    synth.template.resourceCountIs('AWS::DynamoDB::Table', TABLES.length);
  });
});

describe('Lambda functions', () => {
  it('creates one Node 22 arm64 function per manifest entry (and the CDK’s console copier)', () => {
    const own = logicalIdsOfType(synth.json, 'AWS::Lambda::Function').filter(
      (id) =>
        !String(synth.json.Resources[id]?.Metadata?.['aws:cdk:path']).includes(
          '/Custom::CDKBucketDeployment',
        ),
    );
    expect(own).toHaveLength(FUNCTIONS.length);
    for (const spec of FUNCTIONS) {
      const props = fnProps(spec.id);
      expect(props.Runtime, spec.id).toBe('nodejs22.x');
      expect(props.Architectures, spec.id).toEqual(['arm64']);
      expect(props.Timeout, spec.id).toBe(spec.timeoutSeconds);
      expect(props.Handler, spec.id).toBe(`index.${spec.handler}`);
    }
  });

  it('gives every function the shared environment', () => {
    for (const spec of FUNCTIONS) {
      const env = (fnProps(spec.id).Environment as { Variables: Record<string, unknown> }).Variables;
      for (const table of TABLES) expect(env[table.envVar], `${spec.id} ${table.envVar}`).toBeDefined();
      expect(env).toMatchObject({
        HOST_QUEUE_PREFIX: 'lifeboat-host-',
        MAX_BACKUPS: '5',
        MAX_BACKUPS_HOST: '2',
        HEARTBEAT_SECONDS: '120',
        LIFEBOAT_SECRET_STORE: 'secretsmanager',
      });
      expect(JSON.stringify(env.BACKUP_STATE_MACHINE_ARN)).toContain(':stateMachine:Lifeboat-Backup');
      expect(JSON.stringify(env.RESTORE_STATE_MACHINE_ARN)).toContain(':stateMachine:Lifeboat-Restore');
      expect(JSON.stringify(env.MAINTENANCE_STATE_MACHINE_ARN)).toContain(
        ':stateMachine:Lifeboat-Maintenance',
      );
    }
  });

  it('names the dispatcher to the functions that wake it, not to itself', () => {
    const envOf = (id: string) =>
      (fnProps(id).Environment as { Variables: Record<string, unknown> }).Variables;
    const dispatcherRef = { Ref: fnLogicalId('Dispatcher') };
    expect(envOf('Api').DISPATCHER_FUNCTION_NAME).toEqual(dispatcherRef);
    expect(envOf('Release').DISPATCHER_FUNCTION_NAME).toEqual(dispatcherRef);
    expect(envOf('CommitBackup').DISPATCHER_FUNCTION_NAME).toEqual(dispatcherRef);
    expect(envOf('Dispatcher').DISPATCHER_FUNCTION_NAME).toBeUndefined();
  });

  it('lets only the dispatcher start executions, and only of the three machines', () => {
    const start = fnStatements('Dispatcher').filter((s) => actionsOf(s).includes('states:StartExecution'));
    expect(start).toHaveLength(1);
    const resources = JSON.stringify(start[0]?.Resource);
    expect(resources).toContain(':stateMachine:Lifeboat-Backup');
    expect(resources).toContain(':stateMachine:Lifeboat-Restore');
    expect(resources).toContain(':stateMachine:Lifeboat-Maintenance');
    for (const spec of FUNCTIONS.filter((f) => f.id !== 'Dispatcher')) {
      expect(fnActions(spec.id), spec.id).not.toContain('states:StartExecution');
    }
  });

  it('leaves sending to host queues to the state machines: step functions get no SQS access', () => {
    for (const id of [
      'AdmitBackup',
      'CommitBackup',
      'AdmitRestore',
      'CommitRestore',
      'AdmitMaintenance',
      'CommitMaintenance',
      'MarkFailed',
      'Release',
    ]) {
      expect(
        fnActions(id).filter((a) => a.startsWith('sqs:')),
        id,
      ).toEqual([]);
    }
  });

  it('lets only the Admit steps read lifeboat/ secrets (to seal them to the host), and nothing else of Secrets Manager', () => {
    for (const id of ['AdmitBackup', 'AdmitRestore', 'AdmitMaintenance']) {
      const reads = fnStatements(id).filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
      expect(reads.flatMap(actionsOf), id).toEqual(['secretsmanager:GetSecretValue']);
      expect(JSON.stringify(reads[0]?.Resource), id).toContain(':secret:lifeboat/*');
    }
    for (const id of [
      'CommitBackup',
      'CommitRestore',
      'CommitMaintenance',
      'MarkFailed',
      'Release',
      'Dispatcher',
    ]) {
      expect(
        fnActions(id).filter((a) => a.startsWith('secretsmanager:')),
        id,
      ).toEqual([]);
    }
  });

  it('leaves writing progress records to the runners: the API only reads them', () => {
    const progress = logicalIdByPath(synth.json, 'Tables/Progress/Resource');
    const writers = FUNCTIONS.filter((spec) =>
      fnStatements(spec.id).some(
        (s) =>
          JSON.stringify(s.Resource).includes(progress) &&
          actionsOf(s).some((a) => /dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem)/.test(a)),
      ),
    );
    expect(writers.map((f) => f.id)).toEqual([]);
    expect(
      fnStatements('Api').some(
        (s) =>
          JSON.stringify(s.Resource).includes(progress) && actionsOf(s).includes('dynamodb:BatchGetItem'),
      ),
    ).toBe(true);
  });

  it('lets the API manage host queues and lifeboat/ secrets only', () => {
    const statements = fnStatements('Api');
    const queues = statements.find((s) => actionsOf(s).includes('sqs:CreateQueue'));
    expect(actionsOf(queues as StatementJson)).toEqual(
      expect.arrayContaining([
        'sqs:CreateQueue',
        'sqs:GetQueueAttributes',
        'sqs:SetQueueAttributes',
        'sqs:DeleteQueue',
      ]),
    );
    expect(JSON.stringify(queues?.Resource)).toMatch(/:lifeboat-host-\*"\]\]\}$/);
    const secrets = statements.find((s) => actionsOf(s).includes('secretsmanager:CreateSecret'));
    expect(JSON.stringify(secrets?.Resource)).toContain(':secret:lifeboat/*');
    expect(fnActions('Api')).toContain('lambda:InvokeFunction');
    const passRole = statements.find((s) => actionsOf(s).includes('iam:PassRole'));
    expect(passRole?.Condition).toEqual({
      StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' },
    });
  });
});

describe('HTTP API', () => {
  it('has exactly one route per ROUTES entry, all to the Api function', () => {
    synth.template.resourceCountIs('AWS::ApiGatewayV2::Route', ROUTES.length);
    for (const route of ROUTES) {
      synth.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: `${route.method} ${route.path}`,
      });
    }
    synth.template.resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: { 'Fn::GetAtt': [fnLogicalId('Api'), 'Arn'] },
    });
  });

  it('logs access and throttles the default stage', () => {
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      DefaultRouteSettings: { ThrottlingRateLimit: Match.anyValue(), ThrottlingBurstLimit: Match.anyValue() },
    });
  });
});

describe('scheduler and alarms', () => {
  it('wakes the dispatcher every minute from the lifeboat schedule group', () => {
    synth.template.hasResourceProperties('AWS::Scheduler::ScheduleGroup', { Name: 'lifeboat' });
    synth.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 minute)',
      GroupName: Match.anyValue(),
      Target: { Arn: { 'Fn::GetAtt': [fnLogicalId('Dispatcher'), 'Arn'] } },
    });
  });

  it('alarms on failed and timed-out executions and on errors of every function, to one topic', () => {
    const alarms = logicalIdsOfType(synth.json, 'AWS::CloudWatch::Alarm').map(
      (id) => synth.json.Resources[id]?.Properties ?? {},
    );
    const metrics = alarms.map((a) => `${a.Namespace}/${a.MetricName}`);
    // Backup, Restore and Maintenance.
    expect(metrics.filter((m) => m === 'AWS/States/ExecutionsFailed')).toHaveLength(3);
    expect(metrics.filter((m) => m === 'AWS/States/ExecutionsTimedOut')).toHaveLength(3);
    expect(metrics.filter((m) => m === 'AWS/Lambda/Errors')).toHaveLength(FUNCTIONS.length);
    const [topicId] = logicalIdsOfType(synth.json, 'AWS::SNS::Topic');
    for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([{ Ref: topicId }]);
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('passes: every finding is fixed or acknowledged with a reason', () => {
    // synthLifeboat ran the checks already; acknowledgments are recorded with their reasons.
    const acks = synth.stack.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules'))
      .flatMap((m) => Object.values(m.data as Record<string, string>));
    expect(acks.length).toBeGreaterThan(0);
    for (const reason of acks) expect(reason.length).toBeGreaterThan(20);
  });

  it('fails the synth on a finding nobody acknowledged', () => {
    withStubApp({}, ({ app, stack }) => {
      // A topic without enforceSSL is an AwsSolutions-SNS3 finding.
      new sns.Topic(Stack.of(stack), 'Careless');
      expect(() => app.synth()).toThrow(/AwsSolutions-SNS3/);
    });
  });
});
