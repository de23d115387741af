/**
 * One NodejsFunction per FUNCTIONS entry (functions/manifest.ts), with the environment every
 * handler expects. Permissions are granted by the stack, which knows the other resources.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { FUNCTIONS, type FunctionSpec } from '#functions/manifest.ts';

/** The repository root: entries in the manifest and the lock file are relative to it. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * How every function is bundled (esbuild through the CDK). Exported so tests bundle the handlers
 * exactly as `cdk deploy` does (test/helpers/bundle.ts). Minified: classes lose their names, which
 * is why every error class states its `name` (core/errors.ts).
 */
export const BUNDLING = {
  format: OutputFormat.ESM,
  target: 'node22',
  mainFields: ['module', 'main'],
  minify: true,
  sourceMap: true,
  // Bundle the AWS SDK too: the versions we test with, not whatever the runtime ships.
  externalModules: [],
  // Some dependencies are CommonJS and call require(); ESM bundles have none of their own.
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
} satisfies BundlingOptions;

/** Functions by their manifest id (`Api`, `Dispatcher`, `AdmitBackup`, ...). */
export type LifeboatFunctions = Record<string, NodejsFunction>;

export interface FunctionsProps {
  /** Environment shared by every function (tables, state machine ARNs, limits, ...). */
  environment: Record<string, string>;
  /** Folder holding the manifest's entries and package-lock.json (default: the repo root). */
  projectRoot?: string;
}

/**
 * Creates every function directly under `scope`, with the manifest id as construct id, so the
 * resource path `<stack>/<id>/Resource` names the manifest entry (local mode relies on it).
 * The Dispatcher is created first: the others get its name in DISPATCHER_FUNCTION_NAME.
 */
export function createFunctions(scope: Construct, props: FunctionsProps): LifeboatFunctions {
  const root = props.projectRoot ?? PROJECT_ROOT;
  const ordered = [...FUNCTIONS].sort((a, b) => rank(a) - rank(b));
  const created: LifeboatFunctions = {};
  for (const spec of ordered) {
    const dispatcher = created.Dispatcher;
    created[spec.id] = createFunction(scope, spec, root, {
      ...props.environment,
      // The Dispatcher does not wake itself: naming it in its own environment would be a cycle.
      ...(dispatcher && { DISPATCHER_FUNCTION_NAME: dispatcher.functionName }),
    });
  }
  return created;
}

const rank = (spec: FunctionSpec): number => (spec.id === 'Dispatcher' ? 0 : 1);

function createFunction(
  scope: Construct,
  spec: FunctionSpec,
  root: string,
  environment: Record<string, string>,
): NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${spec.id}Logs`, {
    retention: logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  return new NodejsFunction(scope, spec.id, {
    entry: path.join(root, spec.entry),
    handler: spec.handler,
    description: spec.description,
    timeout: Duration.seconds(spec.timeoutSeconds),
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 256,
    tracing: lambda.Tracing.ACTIVE,
    logGroup,
    projectRoot: root,
    depsLockFilePath: path.join(root, 'package-lock.json'),
    environment: { ...environment, NODE_OPTIONS: '--enable-source-maps' },
    bundling: BUNDLING,
  });
}
