import { describe, expect, it } from 'vitest';
import {
  type CfnTemplate,
  cdkPath,
  findLogicalId,
  functionIdOf,
  placeholder,
  resolveDefinition,
  type TokenResolver,
} from './definition.ts';

const template: CfnTemplate = {
  Resources: {
    AdmitBackupAB12: {
      Type: 'AWS::Lambda::Function',
      Metadata: { 'aws:cdk:path': 'Lifeboat/AdmitBackup/Resource' },
    },
    AdmitBackupRole: {
      Type: 'AWS::IAM::Role',
      Metadata: { 'aws:cdk:path': 'Lifeboat/AdmitBackup/ServiceRole/Resource' },
    },
    BackupCD34: {
      Type: 'AWS::StepFunctions::StateMachine',
      Metadata: { 'aws:cdk:path': 'Lifeboat/Backup/Resource' },
      Properties: {
        DefinitionString: {
          'Fn::Join': [
            '',
            [
              '{"StartAt":"Admit","States":{"Admit":{"Type":"Task","Resource":"',
              { 'Fn::GetAtt': ['AdmitBackupAB12', 'Arn'] },
              '","Next":"Run"},"Run":{"Type":"Task","Resource":"arn:',
              { Ref: 'AWS::Partition' },
              ':states:::sqs:sendMessage.waitForTaskToken","End":true}}}',
            ],
          ],
        },
      },
    },
  },
};

const values: TokenResolver = (token) =>
  token.kind === 'Ref' ? `ref(${token.logicalId})` : `att(${token.logicalId}.${token.attribute})`;

describe('resolveDefinition', () => {
  it('joins the fragments and puts each token’s value in its place', () => {
    const asl = resolveDefinition(template, 'BackupCD34', values);
    expect(asl.StartAt).toBe('Admit');
    expect(asl.States.Admit?.Resource).toBe('att(AdmitBackupAB12.Arn)');
    expect(asl.States.Run?.Resource).toBe(
      'arn:ref(AWS::Partition):states:::sqs:sendMessage.waitForTaskToken',
    );
  });

  it('escapes values that would break the JSON string they land in', () => {
    const asl = resolveDefinition(template, 'BackupCD34', () => 'a "quoted" \\ value');
    expect(asl.States.Admit?.Resource).toBe('a "quoted" \\ value');
  });

  it('resolves Fn::Sub with pseudo parameters, attributes, variables and escaped literals', () => {
    const sub: CfnTemplate = {
      Resources: {
        M: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: {
            DefinitionString: {
              'Fn::Sub': [
                // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation / IAM ${} syntax, not a JS template
                '{"StartAt":"A","Comment":"${!Keep}","States":{"A":{"Type":"Task","Resource":"${Fn.Arn}","Parameters":{"p":"${AWS::Region}","q":"${Named}"},"End":true}}}',
                { Named: { Ref: 'Queue' } },
              ],
            },
          },
        },
      },
    };
    const asl = resolveDefinition(sub, 'M', values);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation / IAM ${} syntax, not a JS template
    expect(asl.Comment).toBe('${Keep}');
    expect(asl.States.A?.Resource).toBe('att(Fn.Arn)');
    expect(asl.States.A?.Parameters).toEqual({ p: 'ref(AWS::Region)', q: 'ref(Queue)' });
  });

  it('applies DefinitionSubstitutions', () => {
    const withSubs: CfnTemplate = {
      Resources: {
        M: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: {
            // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation / IAM ${} syntax, not a JS template
            DefinitionString: '{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"${fn}","End":true}}}',
            DefinitionSubstitutions: { fn: { 'Fn::GetAtt': 'Fn1.Arn' } },
          },
        },
      },
    };
    expect(resolveDefinition(withSubs, 'M', values).States.A?.Resource).toBe('att(Fn1.Arn)');
  });

  it('refuses what is not a state machine, and intrinsics it does not know', () => {
    expect(() => resolveDefinition(template, 'AdmitBackupAB12', values)).toThrow(/not a state machine/);
    expect(() => resolveDefinition(template, 'Missing', values)).toThrow(/not a state machine/);
    const odd: CfnTemplate = {
      Resources: {
        M: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: { DefinitionString: { 'Fn::ImportValue': 'x' } },
        },
      },
    };
    expect(() => resolveDefinition(odd, 'M', values)).toThrow(/Fn::ImportValue/);
  });

  it('has readable placeholders for dry runs', () => {
    const asl = resolveDefinition(template, 'BackupCD34', placeholder);
    expect(asl.States.Admit?.Resource).toBe('{{GetAtt:AdmitBackupAB12.Arn}}');
    expect(asl.States.Run?.Resource).toBe(
      'arn:{{Ref:AWS::Partition}}:states:::sqs:sendMessage.waitForTaskToken',
    );
  });
});

describe('construct paths', () => {
  it('finds resources by construct id and maps a Lambda back to its manifest id', () => {
    expect(cdkPath(template, 'BackupCD34')).toBe('Lifeboat/Backup/Resource');
    expect(findLogicalId(template, 'AWS::StepFunctions::StateMachine', 'Backup')).toBe('BackupCD34');
    expect(findLogicalId(template, 'AWS::Lambda::Function', 'Backup')).toBeUndefined();
    expect(functionIdOf(template, 'AdmitBackupAB12')).toBe('AdmitBackup');
    expect(functionIdOf(template, 'AdmitBackupRole')).toBeUndefined();
  });
});
