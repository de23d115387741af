/**
 * What the template gives each Lambda function, resolved for local mode: its handler, timeout,
 * memory, role and environment variables (`AWS::Lambda::Function` resources of the synthesized
 * template). The `Ref`s and `Fn::GetAtt`s are mapped to local names here, in one place: tables
 * to `lifeboat-<key>` (CloudFormation generates their names in AWS), roles to
 * `arn:aws:iam::<account>:role/<logicalId>`, queues by their QueueName, functions and state
 * machines as the state machine definitions resolve them (localSubstitution).
 */
import { basename, join } from 'node:path';
import { FUNCTIONS } from '#functions/manifest.ts';
import {
  type CfnTemplate,
  type CfnToken,
  functionIdOf,
  resolveValue,
  type TokenResolver,
} from '#infra/definition.ts';
import { LOCAL_ACCOUNT } from './config.ts';
import type { LocalCredentials } from './credentials.ts';
import { localTableName } from './dynamodb.ts';
import { localFunctionName, PROJECT_ROOT } from './functions.ts';
import type { FunctionRuntime } from './lambda-workers.ts';
import { localSubstitution } from './stepfunctions/definitions.ts';
import { localRoleArn, tableKeyOf } from './template-names.ts';

/**
 * Every `Ref` / `Fn::GetAtt` a function's environment may hold, as local mode names it. A
 * resource local mode does not have is an error naming it.
 */
export function localResourceSubstitution(template: CfnTemplate, region: string): TokenResolver {
  const base = localSubstitution(template, region);
  return (token: CfnToken) => {
    const resource = template.Resources[token.logicalId];
    const attribute = token.kind === 'GetAtt' ? token.attribute : 'Ref';
    switch (resource?.Type) {
      case 'AWS::DynamoDB::Table': {
        const key = tableKeyOf(template, token.logicalId);
        if (!key) throw new Error(`table ${token.logicalId} is not in functions/tables.ts`);
        const name = localTableName({ key: key as never });
        if (attribute === 'Ref') return name;
        if (attribute === 'Arn') return `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT}:table/${name}`;
        break;
      }
      case 'AWS::SQS::Queue': {
        const name = resource.Properties?.QueueName;
        if (typeof name !== 'string') break;
        if (attribute === 'QueueName') return name;
        if (attribute === 'Arn') return `arn:aws:sqs:${region}:${LOCAL_ACCOUNT}:${name}`;
        break;
      }
      // No SNS locally: an empty NOTIFY_TOPIC_ARN sends notifications to the webhook instead
      // (functions/notify.ts), when local mode's config names one.
      case 'AWS::SNS::Topic':
        if (attribute === 'Ref') return '';
        break;
      case 'AWS::IAM::Role':
        if (attribute === 'Ref') return token.logicalId;
        if (attribute === 'Arn') return localRoleArn(token.logicalId);
        break;
      default:
        return base(token);
    }
    throw new Error(`${resource.Type} ${token.logicalId}.${attribute} has no local value`);
  };
}

/** A function as the template defines it, resolved for local mode. */
export interface TemplateFunction {
  /** Manifest id (`Api`, `AdmitBackup`, ...), from the construct path. */
  id: string;
  logicalId: string;
  /** `<file>.<export>` (`index.handler`: export `handler` of the bundle's index.mjs). */
  handler: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** Logical id of the function's execution role (its `Role` GetAtt), if the template names one. */
  roleLogicalId: string | undefined;
  /** The template's variables, every token resolved to its local value. */
  environment: Record<string, string>;
}

/** Every `AWS::Lambda::Function` of the template that is a manifest function. */
export function templateFunctions(template: CfnTemplate, region: string): TemplateFunction[] {
  const substitute = localResourceSubstitution(template, region);
  const found: TemplateFunction[] = [];
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const id = functionIdOf(template, logicalId);
    if (!id) continue;
    const p = resource.Properties ?? {};
    const variables = ((p.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ??
      {}) as Record<string, unknown>;
    const environment: Record<string, string> = {};
    for (const [name, value] of Object.entries(variables))
      environment[name] = resolveValue(value, substitute);
    const role = (p.Role as { 'Fn::GetAtt'?: unknown } | undefined)?.['Fn::GetAtt'];
    found.push({
      id,
      logicalId,
      handler: typeof p.Handler === 'string' ? p.Handler : 'index.handler',
      timeoutSeconds: typeof p.Timeout === 'number' ? p.Timeout : 3,
      memoryMb: typeof p.MemorySize === 'number' ? p.MemorySize : 128,
      roleLogicalId: Array.isArray(role) && typeof role[0] === 'string' ? role[0] : undefined,
      environment,
    });
  }
  return found;
}

/** Gives the credentials a function's role signs with (local mode's one key until IAM is enforced). */
export type CredentialsFor = (roleLogicalId: string | undefined, functionId: string) => LocalCredentials;

/** The endpoints local mode serves in place of the AWS services. */
export interface LocalServices {
  region: string;
  /** `AWS_ENDPOINT_URL_<SERVICE>` values: DYNAMODB, SQS, SFN, LAMBDA, SCHEDULER. */
  endpoints: Record<string, string>;
  /** Folder of local mode's secret store, which stands in for Secrets Manager. */
  secretsDir: string;
}

/** Variables of the developer's environment a local function still sees (none is an AWS setting). */
const PASSED_THROUGH = ['LIFEBOAT_LOG_LEVEL', 'PATH', 'LANG', 'TZ'] as const;

/**
 * The whole environment of one function's worker: the template's variables, plus what the Lambda
 * runtime sets (region, function name, memory, handler), plus the local services: only the AWS
 * endpoints, the credentials and the secret store (no Secrets Manager locally) differ from AWS.
 */
export function functionEnvironment(
  fn: TemplateFunction,
  services: LocalServices,
  credentials: LocalCredentials,
  functionName: string,
  parent: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_THROUGH) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, fn.environment, {
    AWS_REGION: services.region,
    AWS_DEFAULT_REGION: services.region,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    _HANDLER: fn.handler,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  });
  for (const [service, url] of Object.entries(services.endpoints)) env[`AWS_ENDPOINT_URL_${service}`] = url;
  if (env.LIFEBOAT_SECRET_STORE === 'secretsmanager')
    env.LIFEBOAT_SECRET_STORE = `local:${services.secretsDir}`;
  return env;
}

/**
 * How each function runs: its module (the bundle's `index.mjs`, or with `bundles` undefined the
 * TypeScript source, LIFEBOAT_LOCAL_SOURCES), the export the template's Handler names, and its
 * environment. Every manifest function must be in the template, and the reverse.
 */
export function functionRuntimes(opts: {
  functions: readonly TemplateFunction[];
  bundles: ReadonlyMap<string, { file: string }> | undefined;
  services: LocalServices;
  credentialsFor: CredentialsFor;
}): FunctionRuntime[] {
  const { services } = opts;
  const missing = FUNCTIONS.filter((spec) => !opts.functions.some((f) => f.id === spec.id));
  if (missing.length) throw new Error(`the template has no function ${missing.map((f) => f.id).join(', ')}`);
  return opts.functions.map((fn) => {
    const spec = FUNCTIONS.find((f) => f.id === fn.id);
    if (!spec) throw new Error(`template function ${fn.id} is not in functions/manifest.ts`);
    const dot = fn.handler.lastIndexOf('.');
    const [module, exported] = [fn.handler.slice(0, dot), fn.handler.slice(dot + 1)];
    const bundle = opts.bundles?.get(fn.id);
    if (opts.bundles && !bundle) throw new Error(`no bundle of ${fn.id}`);
    if (bundle && `${module}.mjs` !== basename(bundle.file))
      throw new Error(`${fn.id}: Handler ${fn.handler} names no export of ${bundle.file}`);
    const name = localFunctionName(fn);
    return {
      id: fn.id,
      timeoutSeconds: fn.timeoutSeconds,
      init: {
        file: bundle ? bundle.file : join(PROJECT_ROOT, spec.entry),
        handler: bundle ? exported : spec.handler,
        functionName: name,
        invokedFunctionArn: `arn:aws:lambda:${services.region}:${LOCAL_ACCOUNT}:function:${name}`,
        memoryLimitInMB: String(fn.memoryMb),
      },
      env: functionEnvironment(fn, services, opts.credentialsFor(fn.roleLogicalId, fn.id), name),
    };
  });
}
