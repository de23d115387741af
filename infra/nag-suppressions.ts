/**
 * cdk-nag (AwsSolutions) findings Lifeboat accepts, each acknowledged on the narrowest construct
 * with the reason it is acceptable. Anything not acknowledged here fails the synth.
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { ConsoleSite } from './console-site.ts';
import type { LifeboatStack } from './stack.ts';

/** An account-wide ARN pattern as cdk-nag prints it. */
const pattern = (service: string, resource: string): string =>
  `arn:<AWS::Partition>:${service}:<AWS::Region>:<AWS::AccountId>:${resource}`;

const XRAY_AND_LOGS =
  'X-Ray (xray:PutTraceSegments, PutTelemetryRecords) and CloudWatch Logs delivery actions do not support resource-level permissions';

function ack(scope: IConstruct, findings: Record<string, string>): void {
  for (const [id, reason] of Object.entries(findings)) Validations.of(scope).acknowledge({ id, reason });
}

/** `<LogicalId.Arn>` of a construct's CloudFormation resource, as cdk-nag names it. */
function arnToken(construct: IConstruct): string {
  const stack = Stack.of(construct);
  return `<${stack.getLogicalId(construct.node.defaultChild as CfnElement)}.Arn>`;
}

export function acknowledgeFindings(stack: LifeboatStack): void {
  const prefix = stack.node.tryGetContext('hostQueuePrefix') || 'lifeboat-host-';
  const hostQueues = pattern('sqs', `${prefix}*`);
  const secrets = pattern('secretsmanager', 'secret:lifeboat/*');
  const indexFindings = Object.fromEntries(
    Object.values(stack.tables.byKey).map((table) => [
      `AwsSolutions-IAM5[Resource::${arnToken(table)}/index/*]`,
      'Queries on the global secondary indexes of a table this function owns',
    ]),
  );
  const invokeFindings = (fns: IConstruct[]): Record<string, string> =>
    Object.fromEntries(
      fns.map((fn) => [
        `AwsSolutions-IAM5[Resource::${arnToken(fn)}:*]`,
        'Invoke permission covers the versions and aliases of this one function',
      ]),
    );

  for (const fn of Object.values(stack.functions)) {
    ack(fn, {
      'AwsSolutions-L1':
        'Node.js 22 is pinned on purpose: the same code is tested and run locally on Node 22 (package.json engines)',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
        'The AWS-managed basic execution policy only allows writing the function’s own logs',
      'AwsSolutions-IAM5[Resource::*]': `${XRAY_AND_LOGS}; scheduler:ListSchedules (API) is not resource-scoped either`,
      ...indexFindings,
      ...invokeFindings([stack.functions.Dispatcher as IConstruct]),
    });
  }
  const api = stack.functions.Api as IConstruct;
  ack(api, {
    [`AwsSolutions-IAM5[Resource::${hostQueues}]`]:
      'Host queues are created at run time when a host registers: the API manages exactly the lifeboat-host-* queues',
    [`AwsSolutions-IAM5[Resource::${secrets}]`]:
      'Datastore secrets are created at run time, one per datastore, all under the lifeboat/ prefix',
    [`AwsSolutions-IAM5[Resource::${pattern('scheduler', 'schedule/lifeboat/*')}]`]:
      'Per-VM schedules are created at run time, only in the lifeboat schedule group',
  });

  const machineNames = [stack.backup, stack.restore, stack.maintenance].map(
    (m) => (m.stateMachine.node.defaultChild as { stateMachineName?: string }).stateMachineName ?? '',
  );
  ack(api, {
    ...Object.fromEntries(
      machineNames.map((name) => [
        `AwsSolutions-IAM5[Resource::${pattern('states', `execution:${name}:*`)}]`,
        'The API stops (cancels) and describes executions of this state machine (their names are the execution ids, made at run time)',
      ]),
    ),
  });
  ack(stack.functions.Dispatcher as IConstruct, {
    [`AwsSolutions-IAM5[Resource::${pattern('scheduler', 'schedule/lifeboat/*')}]`]:
      'The dispatcher deletes the EventBridge schedule of a scheduled action that ended: only in the lifeboat group',
    ...Object.fromEntries(
      machineNames.map((name) => [
        `AwsSolutions-IAM5[Resource::${pattern('states', `execution:${name}:*`)}]`,
        'The sweep describes executions of this state machine (their names are the execution ids, made at run time)',
      ]),
    ),
  });

  for (const machine of [stack.backup, stack.restore, stack.maintenance].map((m) => m.stateMachine)) {
    ack(machine, {
      'AwsSolutions-IAM5[Resource::*]': XRAY_AND_LOGS,
      [`AwsSolutions-IAM5[Resource::${hostQueues}]`]:
        'The machine sends each task to the queue of the VM’s host; host queues are created at run time',
      ...invokeFindings(Object.values(stack.functions)),
    });
  }

  ack(stack.hostDeadLetters, {
    'AwsSolutions-SQS3':
      'This is the dead-letter queue: the host queues that redrive to it are created by the API at run time, so the template holds no RedrivePolicy naming it',
  });
  // The routes without authorization (ROUTES' `auth: 'none'`): the OpenAPI document alone.
  for (const route of stack.http.api.node.children) {
    const cfn = route.node.defaultChild as
      | { cfnResourceType?: string; authorizationType?: string }
      | undefined;
    if (cfn?.cfnResourceType === 'AWS::ApiGatewayV2::Route' && (cfn.authorizationType ?? 'NONE') === 'NONE') {
      ack(route, {
        'AwsSolutions-APIG4':
          'The OpenAPI document of the API: schemas only, no stored value, the same for every caller (clients read it before signing in)',
      });
    }
  }
  const httpApi = `<${stack.getLogicalId(stack.http.api.node.defaultChild as CfnElement)}>`;
  ack(stack.runnerAccess, {
    'AwsSolutions-IAM5[Resource::*]':
      'states:SendTaskSuccess/Failure/Heartbeat take a task token, not a resource: they support no resource-level permissions',
    ...Object.fromEntries(
      stack.runnerAccess.ownHostPaths.map(({ method, path }) => [
        // cdk-nag prints the policy variable `${aws:PrincipalTag/...}` as `<aws:PrincipalTag/...>`.
        `AwsSolutions-IAM5[Resource::${pattern('execute-api', `${httpApi}/*/${method}${path.replace(/\$\{([^}]+)\}/g, '<$1>')}`)}]`,
        'The wildcard is the stage only; the path names the host tag, so a runner invokes its own host routes alone',
      ]),
    ),
  });
  for (const id of ['AdmitBackup', 'AdmitRestore', 'AdmitMaintenance']) {
    ack(stack.functions[id] as IConstruct, {
      [`AwsSolutions-IAM5[Resource::${secrets}]`]:
        'Admit reads the secrets of the datastore its task names to seal them to the host; datastore secrets are created at run time, all under lifeboat/',
    });
  }
  ack(
    stack.scheduling,
    invokeFindings([stack.functions.Api as IConstruct, stack.functions.Dispatcher as IConstruct]),
  );
  if (stack.consoleSite) acknowledgeConsoleFindings(stack, stack.consoleSite);
}

/** The web console's distribution, and the CDK's function that copies web/ into its bucket. */
function acknowledgeConsoleFindings(stack: LifeboatStack, site: ConsoleSite): void {
  ack(site.distribution, {
    'AwsSolutions-CFR4':
      'No custom domain is configured, so the distribution uses the default *.cloudfront.net certificate, whose security policy CloudFront fixes at TLSv1 (a minimum protocol version needs a custom certificate); browsers negotiate TLS 1.2 or 1.3 with it',
    'AwsSolutions-CFR1':
      'Operators reach their backups from wherever they are: no country is excluded; every API call needs a token',
    'AwsSolutions-CFR2':
      'The console is static files; the API behind the same distribution has its own throttling (stage rate and burst limits) and token authorizer, which a WAF would duplicate at a fixed monthly cost',
  });
  // BucketDeployment's one function per stack (a singleton named by a fixed UUID, directly
  // under the stack): the CDK builds it, with the policy it needs to copy assets.
  const copier = stack.node.children.find((child) => child.node.id.startsWith('Custom::CDKBucketDeployment'));
  if (!copier) throw new Error('The console has no BucketDeployment function to acknowledge findings on');
  const files = arnToken(site.bucket);
  ack(copier, {
    'AwsSolutions-L1':
      'The CDK’s BucketDeployment function: the CDK pins its runtime (it bundles the AWS CLI layer for that runtime); it runs only during a deployment',
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
      'The AWS-managed basic execution policy only allows writing the function’s own logs',
    'AwsSolutions-IAM5[Action::s3:GetBucket*]':
      'BucketDeployment’s read grant on the CDK asset bucket holding the zipped console, and on the console bucket it syncs',
    'AwsSolutions-IAM5[Action::s3:GetObject*]':
      'BucketDeployment’s read grant on the CDK asset bucket holding the zipped console, and on the console bucket it syncs',
    'AwsSolutions-IAM5[Action::s3:List*]':
      'BucketDeployment lists the console bucket to sync it (and prune files the build no longer has)',
    'AwsSolutions-IAM5[Action::s3:Abort*]': 'BucketDeployment’s write grant on the console bucket only',
    'AwsSolutions-IAM5[Action::s3:DeleteObject*]':
      'BucketDeployment’s write grant on the console bucket only: it prunes files a new build no longer has',
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]':
      'The CDK bootstrap asset bucket, where the zipped console is uploaded under a content-hash name decided at deployment',
    [`AwsSolutions-IAM5[Resource::${files}/*]`]:
      'Every object of the console bucket: the deployment writes the built files, whose names carry content hashes',
    'AwsSolutions-IAM5[Resource::*]':
      'cloudfront:CreateInvalidation and GetInvalidation (the deployment makes the distribution forget index.html) support no narrower resource in the CDK’s grant',
  });
}
