/**
 * What a runner on a hypervisor may do in AWS, and nothing more: read its own host queue,
 * answer task tokens, report its tasks' progress, read datastore secrets.
 *
 * Each host authenticates with its own credentials. The AWS-native way for on-premises
 * machines is IAM Roles Anywhere with one X.509 certificate per host: the session then carries
 * principal tags taken from the certificate (`x509Subject/CN`, ...), so deploy with context
 * `runnerHostTag=x509Subject/CN` and certificates whose CN is the host id. A credential broker
 * that tags sessions (`sts:TagSession`) with `lifeboat-host=<id>` works with the default tag.
 * Either way the queue a runner can read is `<prefix><its own tag value>`: a runner holding
 * host 3's certificate cannot receive or delete host 4's tasks.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

export interface RunnerAccessProps {
  /** Host queue name prefix (`lifeboat-host-`). */
  hostQueuePrefix: string;
  /** Principal tag naming the host (`lifeboat-host` or `x509Subject/CN`). */
  hostTag: string;
  /** Secrets the runner resolves from `datastore.secretRef`: `arn:...:secret:lifeboat/*`. */
  secretArnPattern: string;
  /** The executions table, whose progress attributes the runner updates while a task runs. */
  executionsTableArn: string;
}

/** The only attributes of an Execution record a runner may write (its task's progress). */
export const RUNNER_PROGRESS_ATTRIBUTES = ['id', 'phase', 'bytesDone', 'bytesTotal'] as const;

/** The runners' managed policy and a role for IAM Roles Anywhere sessions. */
export class RunnerAccess extends Construct {
  readonly policy: iam.ManagedPolicy;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: RunnerAccessProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const tagVariable = `\${aws:PrincipalTag/${props.hostTag}}`;
    // Credentials without the tag match nothing, rather than a queue named like the bare prefix.
    const tagPresent = { Null: { [`aws:PrincipalTag/${props.hostTag}`]: 'false' } };

    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description: 'Lifeboat runner: its own host queue, task tokens, datastore secrets',
      statements: [
        new iam.PolicyStatement({
          sid: 'OwnHostQueueOnly',
          actions: [
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
            'sqs:ChangeMessageVisibility',
            'sqs:GetQueueAttributes',
            'sqs:GetQueueUrl',
          ],
          // A policy variable, resolved by IAM per request: only the queue named after the host.
          resources: [
            stack.formatArn({
              service: 'sqs',
              resource: `${props.hostQueuePrefix}${tagVariable}`,
              arnFormat: ArnFormat.NO_RESOURCE_NAME,
            }),
          ],
          conditions: tagPresent,
        }),
        new iam.PolicyStatement({
          sid: 'AnswerTaskTokens',
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          // Task tokens are not resources: these actions support no resource-level scoping.
          resources: ['*'],
          conditions: tagPresent,
        }),
        new iam.PolicyStatement({
          sid: 'TaskProgressOnly',
          actions: ['dynamodb:UpdateItem'],
          resources: [props.executionsTableArn],
          // Progress fields only: a runner cannot change an execution's state, error or owner.
          conditions: {
            ...tagPresent,
            'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...RUNNER_PROGRESS_ATTRIBUTES] },
          },
        }),
        new iam.PolicyStatement({
          sid: 'DatastoreSecrets',
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: [props.secretArnPattern],
          conditions: tagPresent,
        }),
      ],
    });

    this.role = new iam.Role(this, 'Role', {
      description: 'Assumed by Lifeboat runners through IAM Roles Anywhere (one certificate per host)',
      assumedBy: new iam.ServicePrincipal('rolesanywhere.amazonaws.com').withSessionTags(),
      managedPolicies: [this.policy],
    });
    // Roles Anywhere also sets the source identity from the certificate.
    this.role.assumeRolePolicy?.addStatements(
      new iam.PolicyStatement({
        actions: ['sts:SetSourceIdentity'],
        principals: [new iam.ServicePrincipal('rolesanywhere.amazonaws.com')],
      }),
    );
  }
}
