import { type CfnTemplate, type CfnToken, cdkPath, functionIdOf, resolveValue } from '#infra/definition.ts';
import { LOCAL_ACCOUNT } from '../config.ts';
import { localFunctionName } from '../functions.ts';
import { localRoleArn, tableKeyOf } from '../template-names.ts';

/** An IAM policy document as the evaluator takes it. */
export interface PolicyDocument {
  Version?: string;
  Statement: Record<string, unknown>[];
}

/** A role of the template: its local ARN and its identity policies. */
export interface TemplateRole {
  logicalId: string;
  /** `<stack>/<construct path>` without `/Resource`, for messages (`Lifeboat/Api/ServiceRole`). */
  path: string;
  arn: string;
  policies: { name: string; document: PolicyDocument }[];
}

/** What local mode enforces: each role, and the runners' policy. */
export interface TemplatePolicies {
  roles: Record<string, TemplateRole>;
  /** Role logical id of each Lambda function, by manifest id (`Api`, `AdmitBackup`, ...). */
  functionRoles: Record<string, string>;
  /** Role logical id of each state machine, by state machine name. */
  machineRoles: Record<string, string>;
  /** The runners' managed policy (`<stack>/Runner/Policy`), undefined if the template has none. */
  runner?: { name: string; document: PolicyDocument };
  /** The principal tag naming a runner's host in that policy (`x509Subject/CN`). */
  runnerHostTag?: string;
}

/**
 * What each `Ref` / `Fn::GetAtt` of a policy stands for locally: tables `lifeboat-<key>`, queues
 * by their QueueName, functions `lifeboat-<Id>`, state machines by name, roles by logical id.
 * A resource local mode has no counterpart of (the HTTP API's id in execute-api ARNs) becomes a
 * placeholder that names it and matches no request.
 */
export function policySubstitution(template: CfnTemplate, region: string): (token: CfnToken) => string {
  const stackName = stackNameOf(template);
  const pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': region,
    'AWS::AccountId': LOCAL_ACCOUNT,
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': stackName,
  };
  return (token) => {
    if (token.kind === 'Ref' && token.logicalId in pseudo) return pseudo[token.logicalId] as string;
    const resource = template.Resources[token.logicalId];
    const props = resource?.Properties ?? {};
    const arnOrName = (arn: string, name: string) =>
      token.kind === 'GetAtt' && token.attribute === 'Arn' ? arn : name;
    switch (resource?.Type) {
      case 'AWS::DynamoDB::Table': {
        const key = tableKeyOf(template, token.logicalId);
        const name = key ? `lifeboat-${key}` : token.logicalId;
        return arnOrName(`arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT}:table/${name}`, name);
      }
      case 'AWS::SQS::Queue': {
        const name = typeof props.QueueName === 'string' ? props.QueueName : token.logicalId;
        const arn = `arn:aws:sqs:${region}:${LOCAL_ACCOUNT}:${name}`;
        if (token.kind === 'GetAtt') return token.attribute === 'QueueName' ? name : arn;
        return `http://sqs.${region}.localhost/${LOCAL_ACCOUNT}/${name}`;
      }
      case 'AWS::Lambda::Function': {
        const id = functionIdOf(template, token.logicalId) ?? token.logicalId;
        const name = localFunctionName({ id });
        return arnOrName(`arn:aws:lambda:${region}:${LOCAL_ACCOUNT}:function:${name}`, name);
      }
      case 'AWS::StepFunctions::StateMachine': {
        const name = typeof props.StateMachineName === 'string' ? props.StateMachineName : token.logicalId;
        const arn = `arn:aws:states:${region}:${LOCAL_ACCOUNT}:stateMachine:${name}`;
        return token.kind === 'GetAtt' && token.attribute === 'Name' ? name : arn;
      }
      case 'AWS::IAM::Role':
        return arnOrName(localRoleArn(token.logicalId), token.logicalId);
      case 'AWS::IAM::ManagedPolicy':
        return `arn:aws:iam::${LOCAL_ACCOUNT}:policy/${token.logicalId}`;
      default:
        return `local-unavailable-${token.logicalId}`;
    }
  };
}

function stackNameOf(template: CfnTemplate): string {
  for (const resource of Object.values(template.Resources)) {
    const path = resource.Metadata?.['aws:cdk:path'];
    if (typeof path === 'string' && path.includes('/')) return path.slice(0, path.indexOf('/'));
  }
  return 'Lifeboat';
}

/** Resolve every intrinsic inside a policy document (strings stay, lists and maps recurse). */
function resolveDeep(value: unknown, substitute: (token: CfnToken) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveDeep(v, substitute));
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    const first = entries[0]?.[0];
    if (entries.length === 1 && (first === 'Ref' || first?.startsWith('Fn::'))) {
      return resolveValue(value, substitute);
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, resolveDeep(v, substitute)]));
  }
  return value;
}

function refsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) =>
    item && typeof item === 'object' && typeof (item as { Ref?: unknown }).Ref === 'string'
      ? [(item as { Ref: string }).Ref]
      : [],
  );
}

function roleLogicalIdOf(value: unknown): string | undefined {
  const att = (value as { 'Fn::GetAtt'?: unknown } | undefined)?.['Fn::GetAtt'];
  return Array.isArray(att) && typeof att[0] === 'string' ? att[0] : undefined;
}

/** Every role of `template` with its resolved policies, and the runners' policy. */
export function templatePolicies(template: CfnTemplate, region: string): TemplatePolicies {
  const substitute = policySubstitution(template, region);
  const roles: Record<string, TemplateRole> = {};
  const resources = Object.entries(template.Resources);
  const document = (id: string): PolicyDocument =>
    resolveDeep(template.Resources[id]?.Properties?.PolicyDocument, substitute) as PolicyDocument;
  for (const [logicalId, resource] of resources) {
    if (resource.Type !== 'AWS::IAM::Role') continue;
    const path = (cdkPath(template, logicalId) ?? logicalId).replace(/\/Resource$/, '');
    const role: TemplateRole = { logicalId, path, arn: localRoleArn(logicalId), policies: [] };
    for (const policy of (resource.Properties?.Policies as {
      PolicyName?: string;
      PolicyDocument?: unknown;
    }[]) ?? []) {
      role.policies.push({
        name: policy.PolicyName ?? `${logicalId}-inline`,
        document: resolveDeep(policy.PolicyDocument, substitute) as PolicyDocument,
      });
    }
    for (const managed of refsOf(resource.Properties?.ManagedPolicyArns)) {
      if (template.Resources[managed]?.Type === 'AWS::IAM::ManagedPolicy') {
        role.policies.push({ name: managed, document: document(managed) });
      }
    }
    roles[logicalId] = role;
  }
  for (const [logicalId, resource] of resources) {
    if (resource.Type !== 'AWS::IAM::Policy' && resource.Type !== 'AWS::IAM::ManagedPolicy') continue;
    for (const roleId of refsOf(resource.Properties?.Roles)) {
      const role = roles[roleId];
      if (role && !role.policies.some((p) => p.name === logicalId)) {
        role.policies.push({ name: logicalId, document: document(logicalId) });
      }
    }
  }
  const functionRoles: Record<string, string> = {};
  const machineRoles: Record<string, string> = {};
  for (const [logicalId, resource] of resources) {
    const props = resource.Properties ?? {};
    if (resource.Type === 'AWS::Lambda::Function') {
      const id = functionIdOf(template, logicalId);
      const role = roleLogicalIdOf(props.Role);
      if (id && role) functionRoles[id] = role;
    }
    if (resource.Type === 'AWS::StepFunctions::StateMachine') {
      const role = roleLogicalIdOf(props.RoleArn);
      const name = typeof props.StateMachineName === 'string' ? props.StateMachineName : logicalId;
      if (role) machineRoles[name] = role;
    }
  }
  const runnerId = resources.find(
    ([id, r]) =>
      r.Type === 'AWS::IAM::ManagedPolicy' && cdkPath(template, id)?.endsWith('/Runner/Policy/Resource'),
  )?.[0];
  const runner = runnerId ? { name: runnerId, document: document(runnerId) } : undefined;
  const tag = runner && /\$\{aws:PrincipalTag\/([^}]+)\}/.exec(JSON.stringify(runner.document))?.[1];
  return { roles, functionRoles, machineRoles, runner, runnerHostTag: tag ?? undefined };
}
