/**
 * What a runner on a hypervisor may do in AWS, and nothing more: read its own host queue,
 * answer task tokens, write its own tasks' progress records, and call the API's runner routes
 * for its own host. No secrets: datastore secrets reach a runner only inside its tasks, sealed
 * to its host's key (platform/sealed-secrets.ts).
 *
 * Each host authenticates with IAM Roles Anywhere and its own X.509 certificate, whose subject
 * CN is its host id. The stack creates the trust anchor (the CA of those certificates, from CDK
 * context) and a profile for the runner role; the role trusts Roles Anywhere only through that
 * anchor (`aws:SourceArn`), so a certificate of any other anchor in the account gets nothing.
 * Roles Anywhere tags the session with the certificate's subject (`x509Subject/CN`), and every
 * grant below names that tag: the queue `<prefix><its host id>`, progress keys `<its host id>/...`,
 * API paths `/runner/hosts/<its host id>...`. A runner holding host 3's certificate cannot
 * receive host 4's tasks, touch its progress, nor read, report or key it through the API.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { IHttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rolesanywhere from 'aws-cdk-lib/aws-rolesanywhere';
import { Construct } from 'constructs';
import { PROGRESS_ATTRIBUTES } from '#functions/tables.ts';
import type { ApiRoute } from './api.ts';
import type { TrustAnchorSource } from './config.ts';

export interface RunnerAccessProps {
  /** Host queue name prefix (`lifeboat-host-`). */
  hostQueuePrefix: string;
  /** Principal tag naming the host (`x509Subject/CN` with Roles Anywhere). */
  hostTag: string;
  /** The progress table, whose `<hostId>/...` records the runner of each host writes. */
  progressTableArn: string;
  /** The HTTP API, and its IAM-authorized runner routes (each with `{id}`, the host id). */
  httpApi: IHttpApi;
  runnerRoutes: readonly ApiRoute[];
  /** The CA of the runners' certificates; without it no anchor, profile or role is created. */
  trustAnchor?: TrustAnchorSource;
}

/** The only attributes of a progress record a runner may write (its key included). */
export const RUNNER_PROGRESS_ATTRIBUTES = PROGRESS_ATTRIBUTES;

const ROLES_ANYWHERE = 'rolesanywhere.amazonaws.com';

/** The runners' managed policy and, given a trust anchor, the Roles Anywhere anchor, role and profile. */
export class RunnerAccess extends Construct {
  readonly policy: iam.ManagedPolicy;
  readonly trustAnchor?: rolesanywhere.CfnTrustAnchor;
  readonly role?: iam.Role;
  readonly profile?: rolesanywhere.CfnProfile;
  /** The API paths the policy lets a runner invoke, the host tag's policy variable in them. */
  readonly ownHostPaths: readonly { method: string; path: string }[];

  constructor(scope: Construct, id: string, props: RunnerAccessProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const tagVariable = `\${aws:PrincipalTag/${props.hostTag}}`;
    // Credentials without the tag match nothing, rather than a queue named like the bare prefix.
    const tagPresent = { Null: { [`aws:PrincipalTag/${props.hostTag}`]: 'false' } };
    this.ownHostPaths = props.runnerRoutes.map((route) => ({
      method: route.method,
      path: ownHostPath(route, tagVariable),
    }));

    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description:
        'Lifeboat runner: its own host queue, task tokens, its own progress records and API routes',
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
          sid: 'OwnProgressOnly',
          actions: ['dynamodb:UpdateItem', 'dynamodb:PutItem'],
          resources: [props.progressTableArn],
          conditions: {
            ...tagPresent,
            // Keys `<its host id>/<execution id>` only: the `/` keeps host 3 out of host 31's keys.
            'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${tagVariable}/*`] },
            // Progress fields only, and nothing read back.
            'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...RUNNER_PROGRESS_ATTRIBUTES] },
            StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
          },
        }),
        new iam.PolicyStatement({
          sid: 'OwnHostRunnerRoutesOnly',
          actions: ['execute-api:Invoke'],
          // `{id}` is the host tag, resolved by IAM per request: a runner may call
          // `/runner/hosts/3...` only with host 3's certificate. The API handler takes the
          // path's {id} as the caller's host on these routes (functions/api/auth.ts
          // iamHostPrincipal) because this statement guarantees it is the caller's own.
          resources: this.ownHostPaths.map((route) =>
            props.httpApi.arnForExecuteApi(route.method, route.path),
          ),
          conditions: tagPresent,
        }),
      ],
    });

    if (!props.trustAnchor) return;
    const source = props.trustAnchor;
    this.trustAnchor = new rolesanywhere.CfnTrustAnchor(this, 'TrustAnchor', {
      name: `${stack.stackName}-runners`,
      enabled: true,
      source:
        'acmPcaArn' in source
          ? { sourceType: 'AWS_ACM_PCA', sourceData: { acmPcaArn: source.acmPcaArn } }
          : {
              sourceType: 'CERTIFICATE_BUNDLE',
              sourceData: { x509CertificateData: source.certificateBundle },
            },
    });
    const fromOwnAnchor = { ArnEquals: { 'aws:SourceArn': this.trustAnchor.attrTrustAnchorArn } };
    this.role = new iam.Role(this, 'Role', {
      description: "Assumed by Lifeboat runners through the stack's own IAM Roles Anywhere trust anchor",
      assumedBy: new iam.ServicePrincipal(ROLES_ANYWHERE).withConditions(fromOwnAnchor).withSessionTags(),
      managedPolicies: [this.policy],
    });
    // Roles Anywhere also sets the source identity from the certificate.
    this.role.assumeRolePolicy?.addStatements(
      new iam.PolicyStatement({
        actions: ['sts:SetSourceIdentity'],
        principals: [new iam.ServicePrincipal(ROLES_ANYWHERE)],
        conditions: fromOwnAnchor,
      }),
    );
    this.profile = new rolesanywhere.CfnProfile(this, 'Profile', {
      name: `${stack.stackName}-runner`,
      enabled: true,
      roleArns: [this.role.roleArn],
      durationSeconds: 3600,
    });
  }
}

/** A runner route's path with its `{id}` replaced by the host tag; no other parameter is allowed. */
function ownHostPath(route: ApiRoute, tagVariable: string): string {
  const parameters = route.path.match(/\{\w+\}/g) ?? [];
  if (parameters.length !== 1 || parameters[0] !== '{id}') {
    throw new Error(
      `runner route ${route.method} ${route.path}: must have {id} (the host) and no other parameter, which IAM could not confine`,
    );
  }
  return route.path.replace('{id}', tagVariable);
}
