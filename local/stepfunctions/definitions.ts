/**
 * The state machines local mode runs, taken from the CDK app itself: synthesized in process
 * (bundling skipped), each `AWS::StepFunctions::StateMachine` resource's DefinitionString
 * resolved into ASL by infra's `resolveDefinition`, Lambda ARNs pointing at the local functions.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { FUNCTIONS } from '#functions/manifest.ts';
import { type CfnTemplate, type CfnToken, functionIdOf, resolveDefinition } from '#infra/definition.ts';
import { LOCAL_ACCOUNT, type LocalConfig } from '../config.ts';
import { localStateMachineArn } from '../env.ts';
import { localFunctionName, PROJECT_ROOT } from '../functions.ts';
import type { MachineSpec } from './runtime.ts';

/**
 * What each `Ref` / `Fn::GetAtt` of a definition stands for locally: pseudo parameters, Lambda
 * ARNs named `lifeboat-<Id>` (the Id from the resource's `aws:cdk:path`), state machine ARNs by
 * name. Anything else is an error naming it: a definition that reaches for a resource local
 * mode does not have cannot run here.
 */
export function localSubstitution(template: CfnTemplate, region: string): (token: CfnToken) => string {
  const pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': region,
    'AWS::AccountId': LOCAL_ACCOUNT,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  return (token) => {
    if (token.kind === 'Ref' && token.logicalId in pseudo) return pseudo[token.logicalId] as string;
    const resource = template.Resources[token.logicalId];
    if (!resource)
      throw new Error(`the definition refers to ${token.logicalId}, which the template does not hold`);
    if (resource.Type === 'AWS::Lambda::Function') {
      const id = functionIdOf(template, token.logicalId);
      if (!id || !FUNCTIONS.some((f) => f.id === id)) {
        throw new Error(`Lambda ${token.logicalId} (${id ?? 'no cdk path'}) is not in functions/manifest.ts`);
      }
      const name = localFunctionName({ id });
      return token.kind === 'GetAtt' && token.attribute === 'Arn'
        ? `arn:aws:lambda:${region}:${LOCAL_ACCOUNT}:function:${name}`
        : name;
    }
    if (resource.Type === 'AWS::StepFunctions::StateMachine') {
      return localStateMachineArn(region, machineName(template, token.logicalId));
    }
    throw new Error(
      `the definition refers to ${resource.Type} ${token.logicalId}: not available in local mode`,
    );
  };
}

function machineName(template: CfnTemplate, logicalId: string): string {
  const name = template.Resources[logicalId]?.Properties?.StateMachineName;
  return typeof name === 'string' ? name : logicalId;
}

/** Every state machine of a template, resolved for local mode. */
export function machinesOfTemplate(template: CfnTemplate, region: string): MachineSpec[] {
  const substitute = localSubstitution(template, region);
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::StepFunctions::StateMachine')
    .map(([logicalId]) => {
      const name = machineName(template, logicalId);
      return {
        name,
        arn: localStateMachineArn(region, name),
        definition: resolveDefinition(template, logicalId, substitute) as unknown as StateMachineDefinition,
      };
    });
}

/** The ARN of the machine named `<stack>-<kind>` (`Lifeboat-Backup`) or `kind`. */
export function machineArnOfKind(
  machines: readonly MachineSpec[],
  kind: 'Backup' | 'Restore' | 'Maintenance',
): string {
  const found = machines.find((m) => m.name === kind || m.name.endsWith(`-${kind}`));
  if (!found) {
    throw new Error(
      `the CDK app has no ${kind} state machine (found: ${machines.map((m) => m.name).join(', ')})`,
    );
  }
  return found.arn;
}

/** The CDK context local mode synthesizes with. */
function synthContext(config: LocalConfig): Record<string, unknown> {
  return {
    'lifeboat:skipBundling': true,
    // The gateway serves the console here: no bucket, distribution or BucketDeployment function
    // (which is no manifest function) in the template local mode runs.
    consoleSite: false,
    heartbeatSeconds: config.heartbeatSeconds,
    hostOfflineSeconds: config.hostOfflineSeconds,
    hostTaskTimeoutSeconds: config.hostTaskTimeoutSeconds,
    // Only when set, so the templates cached under the default settings keep their key.
    ...(config.hostRetryIntervalSeconds && { hostRetryIntervalSeconds: config.hostRetryIntervalSeconds }),
    maxBackups: config.maxBackups,
    maxBackupsHost: config.maxBackupsHost,
    ...(config.monitorIntervalMinutes !== undefined && {
      monitorIntervalMinutes: config.monitorIntervalMinutes,
    }),
    ...(config.notifyWebhookUrl !== undefined && { notifyWebhookUrl: config.notifyWebhookUrl }),
  };
}

/**
 * Synthesize the CDK app in process with local mode's settings and return its template.
 * Imports infra lazily: aws-cdk-lib is large and only this step needs it.
 */
export async function synthesizeTemplate(config: LocalConfig): Promise<CfnTemplate> {
  const { buildApp } = await import('#infra/build-app.ts');
  // The cloud assembly (about 25 MB with the console's assets) is only read for its template.
  const outdir = await mkdtemp(join(tmpdir(), 'lifeboat-synth-'));
  try {
    const { app, stack } = buildApp(synthContext(config), outdir);
    return app.synth().getStackArtifact(stack.artifactId).template as CfnTemplate;
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

// What the template depends on: the CDK app and every contract it reads, and the installed CDK.
const SOURCE_DIRS = ['infra', 'core', 'functions'];
const SOURCE_FILES = ['package-lock.json'];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(PROJECT_ROOT, dir), { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** A hash of the synth context and of every source the template is built from. */
export async function templateKey(config: LocalConfig): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify(synthContext(config)));
  const files = [
    ...(await Promise.all(SOURCE_DIRS.map(sourceFiles))).flat(),
    ...SOURCE_FILES.map((f) => join(PROJECT_ROOT, f)),
  ];
  for (const file of files) {
    hash.update(file);
    hash.update(await readFile(file).catch(() => Buffer.alloc(0)));
  }
  return hash.digest('hex');
}

/**
 * Where synthesized templates are cached: the home folder, and a cache shared by every home of
 * this checkout (`node_modules/.cache/lifeboat`, so fresh homes such as tests' start fast).
 */
export function templateCacheFiles(homeCacheFile: string, key: string): string[] {
  return [
    homeCacheFile,
    join(PROJECT_ROOT, 'node_modules', '.cache', 'lifeboat', `template-${key.slice(0, 16)}.json`),
  ];
}

/**
 * The template, from a cache when the sources and settings are unchanged since it was written,
 * else synthesized (5 to 30 s on a busy machine) and cached. Cache write failures are ignored.
 */
export async function cachedTemplate(
  config: LocalConfig,
  homeCacheFile: string,
): Promise<{ template: CfnTemplate; cached: boolean }> {
  const key = await templateKey(config);
  const files = templateCacheFiles(homeCacheFile, key);
  let template: CfnTemplate | undefined;
  for (const file of files) {
    try {
      const saved = JSON.parse(await readFile(file, 'utf8')) as { key?: string; template?: CfnTemplate };
      if (saved.key === key && saved.template) {
        template = saved.template;
        break;
      }
    } catch {
      // no cache there, or unreadable
    }
  }
  const cached = template !== undefined;
  template ??= await synthesizeTemplate(config);
  for (const file of files) {
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(`${file}.tmp`, JSON.stringify({ key, template }), { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    } catch {
      // a read-only checkout: synthesize next time
    }
  }
  return { template, cached };
}
