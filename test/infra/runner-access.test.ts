/**
 * What a runner may do in AWS, read from the synthesized template: its own queue and progress
 * records, keyed on the principal tag IAM Roles Anywhere really sets (`x509Subject/CN`), no
 * secrets, and a role only the stack's own trust anchor can hand out.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  actionsOf,
  logicalIdByPath,
  logicalIdsOfType,
  type StatementJson,
  type Synthesized,
  statementsOfRole,
  synthLifeboat,
} from './synth.ts';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const CA = fixture('runner-ca.pem');
// biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a JS template
const HOST = '${aws:PrincipalTag/x509Subject/CN}';

let plain: Synthesized;
let anchored: Synthesized;
beforeAll(() => {
  plain = synthLifeboat();
  anchored = synthLifeboat({ runnerTrustAnchorCertificate: CA });
});

const policyStatements = (synth: Synthesized): StatementJson[] => {
  const policyId = logicalIdByPath(synth.json, 'Runner/Policy/Resource');
  const doc = synth.json.Resources[policyId]?.Properties?.PolicyDocument as { Statement: StatementJson[] };
  return doc.Statement;
};

describe('runner policy', () => {
  it('reads only the queue named after the x509Subject/CN tag of its own credentials', () => {
    const sqsStatements = policyStatements(plain).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('sqs:')),
    );
    expect(sqsStatements).toHaveLength(1);
    const [queue] = sqsStatements;
    expect(actionsOf(queue as StatementJson)).toEqual(
      expect.arrayContaining([
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
      ]),
    );
    const resource = JSON.stringify(queue?.Resource);
    expect(resource).toContain(`:lifeboat-host-${HOST}`);
    expect(resource).not.toContain('*');
    expect(queue?.Condition).toEqual({ Null: { 'aws:PrincipalTag/x509Subject/CN': 'false' } });
  });

  it('answers task tokens and nothing else in Step Functions', () => {
    const states = policyStatements(plain)
      .flatMap(actionsOf)
      .filter((a) => a.startsWith('states:'));
    expect(states.sort()).toEqual([
      'states:SendTaskFailure',
      'states:SendTaskHeartbeat',
      'states:SendTaskSuccess',
    ]);
  });

  it('writes only the progress attributes of its own host’s progress records', () => {
    const dynamo = policyStatements(plain).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    expect(dynamo).toHaveLength(1);
    expect(dynamo.flatMap(actionsOf).sort()).toEqual(['dynamodb:PutItem', 'dynamodb:UpdateItem']);
    const resource = JSON.stringify(dynamo[0]?.Resource);
    expect(resource).toContain(logicalIdByPath(plain.json, 'Tables/Progress/Resource'));
    // Not a single execution record: state, error and owner stay the control plane's.
    expect(resource).not.toContain(logicalIdByPath(plain.json, 'Tables/Executions/Resource'));
    expect(dynamo[0]?.Condition).toEqual({
      Null: { 'aws:PrincipalTag/x509Subject/CN': 'false' },
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${HOST}/*`] },
      'ForAllValues:StringEquals': {
        'dynamodb:Attributes': ['id', 'phase', 'bytesDone', 'bytesTotal', 'expiresAt'],
      },
      StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
    });
  });

  it('grants no Secrets Manager action at all: secrets reach runners sealed in their tasks', () => {
    for (const synth of [plain, anchored]) {
      expect(
        policyStatements(synth)
          .flatMap(actionsOf)
          .filter((a) => a.startsWith('secretsmanager:')),
      ).toEqual([]);
    }
    const roleId = logicalIdByPath(anchored.json, 'Runner/Role/Resource');
    expect(JSON.stringify(statementsOfRole(anchored.json, roleId))).not.toContain('secretsmanager');
  });

  it('keys on another tag when context names one', () => {
    const brokered = synthLifeboat({ runnerHostTag: 'lifeboat-host' });
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable
    expect(JSON.stringify(policyStatements(brokered))).toContain('${aws:PrincipalTag/lifeboat-host}/*');
  });
});

describe('IAM Roles Anywhere', () => {
  it('creates the trust anchor from the CA bundle of context, and a profile for the runner role', () => {
    const [anchorId] = logicalIdsOfType(anchored.json, 'AWS::RolesAnywhere::TrustAnchor');
    expect(anchorId).toBeDefined();
    anchored.template.hasResourceProperties('AWS::RolesAnywhere::TrustAnchor', {
      Enabled: true,
      Source: {
        SourceType: 'CERTIFICATE_BUNDLE',
        SourceData: { X509CertificateData: readFileSync(CA, 'utf8') },
      },
    });
    anchored.template.hasResourceProperties('AWS::RolesAnywhere::Profile', {
      Enabled: true,
      RoleArns: [{ 'Fn::GetAtt': [logicalIdByPath(anchored.json, 'Runner/Role/Resource'), 'Arn'] }],
    });
  });

  it('tells the Api Lambda the runner role, whose sessions alone may use the runner routes', () => {
    const apiEnv = (synth: Synthesized) => {
      const id = logicalIdByPath(synth.json, 'Api/Resource');
      const props = synth.json.Resources[id]?.Properties as {
        Environment: { Variables: Record<string, unknown> };
      };
      return props.Environment.Variables;
    };
    expect(apiEnv(anchored).RUNNER_ROLE_NAME).toEqual({
      Ref: logicalIdByPath(anchored.json, 'Runner/Role/Resource'),
    });
    expect(apiEnv(plain).RUNNER_ROLE_NAME).toBeUndefined();
  });

  it('outputs what a runner host is configured with: role, profile, trust anchor, progress table', () => {
    const outputs = (synth: Synthesized) => Object.keys(synth.template.findOutputs('*'));
    expect(outputs(anchored)).toEqual(
      expect.arrayContaining([
        'RunnerRoleArn',
        'RunnerProfileArn',
        'RunnerTrustAnchorArn',
        'ProgressTableName',
      ]),
    );
    expect(outputs(plain)).not.toContain('RunnerRoleArn');
  });

  it('lets Roles Anywhere assume the runner role only through the stack’s own trust anchor', () => {
    const anchorArn = {
      'Fn::GetAtt': [logicalIdByPath(anchored.json, 'Runner/TrustAnchor'), 'TrustAnchorArn'],
    };
    const role =
      anchored.json.Resources[logicalIdByPath(anchored.json, 'Runner/Role/Resource')]?.Properties ?? {};
    const trust = (role.AssumeRolePolicyDocument as { Statement: StatementJson[] }).Statement;
    expect(trust.flatMap(actionsOf).sort()).toEqual([
      'sts:AssumeRole',
      'sts:SetSourceIdentity',
      'sts:TagSession',
    ]);
    for (const statement of trust) {
      expect(statement).toMatchObject({
        Effect: 'Allow',
        Principal: { Service: 'rolesanywhere.amazonaws.com' },
      });
      expect(statement.Condition).toEqual({ ArnEquals: { 'aws:SourceArn': anchorArn } });
    }
    expect(role.ManagedPolicyArns).toEqual([
      { Ref: logicalIdByPath(anchored.json, 'Runner/Policy/Resource') },
    ]);
  });

  it('takes an ACM Private CA instead of a bundle', () => {
    const arn =
      'arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
    const pca = synthLifeboat({ runnerTrustAnchorPcaArn: arn });
    pca.template.hasResourceProperties('AWS::RolesAnywhere::TrustAnchor', {
      Source: { SourceType: 'AWS_ACM_PCA', SourceData: { AcmPcaArn: arn } },
    });
  });

  it('without a trust anchor in context, creates no role anyone could assume, and says so', () => {
    for (const type of ['AWS::RolesAnywhere::TrustAnchor', 'AWS::RolesAnywhere::Profile']) {
      expect(logicalIdsOfType(plain.json, type), type).toEqual([]);
    }
    plain.template.resourcePropertiesCountIs(
      'AWS::IAM::Role',
      {
        AssumeRolePolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Principal: { Service: 'rolesanywhere.amazonaws.com' } }),
          ]),
        },
      },
      0,
    );
    const warnings = plain.stack.runnerAccess.node.metadata.filter((m) => m.type === 'aws:cdk:warning');
    expect(JSON.stringify(warnings)).toContain('runnerTrustAnchorCertificate');
  });

  it('refuses a bundle that is not a CA, a bad PCA ARN, or both sources at once', () => {
    expect(() => synthLifeboat({ runnerTrustAnchorCertificate: fixture('not-a-ca.pem') })).toThrow(
      /CN=3 is not a CA certificate/,
    );
    expect(() => synthLifeboat({ runnerTrustAnchorCertificate: '/nonexistent/ca.pem' })).toThrow(
      /cannot read/,
    );
    expect(() => synthLifeboat({ runnerTrustAnchorPcaArn: 'arn:aws:iam::1:role/x' })).toThrow(
      /ACM Private CA ARN/,
    );
    expect(() =>
      synthLifeboat({
        runnerTrustAnchorCertificate: CA,
        runnerTrustAnchorPcaArn: 'arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0f1e',
      }),
    ).toThrow(/not both/);
  });
});
