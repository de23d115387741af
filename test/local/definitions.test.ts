/** Local mode reads the state machines out of a synthesized template and points them at local functions. */
import { describe, expect, it } from 'vitest';
import { TABLES } from '#functions/tables.ts';
import type { CfnTemplate } from '#infra/definition.ts';
import { resolveConfig } from '#local/config.ts';
import { createTableInput } from '#local/dynamodb.ts';
import { lambdaEnvironment } from '#local/env.ts';
import { machineArnOfKind, machinesOfTemplate } from '#local/stepfunctions/definitions.ts';

const template: CfnTemplate = {
  Resources: {
    AdmitBackupF00: {
      Type: 'AWS::Lambda::Function',
      Metadata: { 'aws:cdk:path': 'Lifeboat/AdmitBackup/Resource' },
    },
    BackupMachine: {
      Type: 'AWS::StepFunctions::StateMachine',
      Properties: {
        StateMachineName: 'Lifeboat-Backup',
        DefinitionString: {
          'Fn::Join': [
            '',
            [
              '{"StartAt":"Admit","States":{"Admit":{"Type":"Task","Resource":"',
              { 'Fn::GetAtt': ['AdmitBackupF00', 'Arn'] },
              '","End":true},"Q":{"Type":"Task","Resource":"arn:',
              { Ref: 'AWS::Partition' },
              ':states:::sqs:sendMessage.waitForTaskToken","End":true}}}',
            ],
          ],
        },
      },
    },
    Stranger: { Type: 'AWS::SNS::Topic' },
  },
};

describe('state machines from the template', () => {
  it('resolves Lambda ARNs to local function names and pseudo parameters to local values', () => {
    const [machine] = machinesOfTemplate(template, 'eu-west-1');
    expect(machine?.name).toBe('Lifeboat-Backup');
    expect(machine?.arn).toBe('arn:aws:states:eu-west-1:000000000000:stateMachine:Lifeboat-Backup');
    const states = machine?.definition.States as Record<string, { Resource: string }>;
    expect(states.Admit?.Resource).toBe(
      'arn:aws:lambda:eu-west-1:000000000000:function:lifeboat-AdmitBackup',
    );
    expect(states.Q?.Resource).toBe('arn:aws:states:::sqs:sendMessage.waitForTaskToken');
    expect(machineArnOfKind(machinesOfTemplate(template, 'eu-west-1'), 'Backup')).toBe(machine?.arn);
    expect(() => machineArnOfKind([], 'Restore')).toThrow(/no Restore state machine/);
  });

  it('refuses a definition that needs a resource local mode does not have', () => {
    const bad = structuredClone(template);
    const definition = bad.Resources.BackupMachine?.Properties?.DefinitionString as {
      'Fn::Join': [string, unknown[]];
    };
    const join = definition['Fn::Join'];
    join[1][1] = { Ref: 'Stranger' };
    expect(() => machinesOfTemplate(bad, 'eu-west-1')).toThrow(/AWS::SNS::Topic Stranger/);
  });
});

describe('local settings', () => {
  it('gives each service the next port after the API unless configured', () => {
    const config = resolveConfig(
      {
        ports: { sqs: 9999 },
        maxBackups: 5,
        maxBackupsHost: 2,
        heartbeatSeconds: 3,
        hostOfflineSeconds: 180,
        hostTaskTimeoutSeconds: 60,
        authorizerCacheSeconds: 60,
        schedulerIntervalSeconds: 60,
        region: 'us-east-1',
        runner: false,
        demo: false,
      },
      8000,
    );
    expect(config.ports).toEqual({
      api: 8000,
      dynamodb: 8001,
      sqs: 9999,
      stepfunctions: 8003,
      lambda: 8004,
      sessions: 8005,
    });
    const credentials = { accessKeyId: 'LBLOCAL0123456789ABCDEF', secretAccessKey: 's'.repeat(43) };
    const env = lambdaEnvironment({
      config,
      credentials,
      secretsDir: '/h/secrets',
      backupStateMachineArn: 'arn:b',
      restoreStateMachineArn: 'arn:r',
      maintenanceStateMachineArn: 'arn:m',
      hostDeadLetterQueueArn: 'arn:aws:sqs:us-east-1:000000000000:lifeboat-dlq-hosts',
      schedulerEndpoint: 'http://127.0.0.1:8005',
    });
    expect(env).toMatchObject({
      AWS_ENDPOINT_URL_SCHEDULER: 'http://127.0.0.1:8005',
      SCHEDULE_GROUP: 'lifeboat',
      SCHEDULE_TARGET_ARN: 'arn:aws:lambda:us-east-1:000000000000:function:lifeboat-Dispatcher',
      TABLE_VMS: 'lifeboat-vms',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8001',
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9999',
      AWS_ENDPOINT_URL_SFN: 'http://127.0.0.1:8003',
      AWS_ENDPOINT_URL_LAMBDA: 'http://127.0.0.1:8004',
      LIFEBOAT_SECRET_STORE: 'local:/h/secrets',
      // The clients sign with local mode's per-start key, never with dummy or real credentials.
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      DISPATCHER_FUNCTION_NAME: 'lifeboat-Dispatcher',
      HEARTBEAT_SECONDS: '3',
      BACKUP_STATE_MACHINE_ARN: 'arn:b',
      MAINTENANCE_STATE_MACHINE_ARN: 'arn:m',
      HOST_DEAD_LETTER_QUEUE_ARN: 'arn:aws:sqs:us-east-1:000000000000:lifeboat-dlq-hosts',
    });
  });

  it('creates each table with its GSIs, every key attribute declared once', () => {
    const requests = TABLES.find((t) => t.key === 'requests');
    const input = requests && createTableInput(requests);
    expect(input?.TableName).toBe('lifeboat-requests');
    expect(input?.GlobalSecondaryIndexes?.[0]).toMatchObject({
      IndexName: 'pending',
      KeySchema: [
        { AttributeName: 'queue', KeyType: 'HASH' },
        { AttributeName: 'rank', KeyType: 'RANGE' },
      ],
    });
    expect(input?.AttributeDefinitions?.map((a) => a.AttributeName).sort()).toEqual(['id', 'queue', 'rank']);
  });
});
