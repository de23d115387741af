/**
 * Synthesizes the Lifeboat app for template tests: bundling skipped and the Lambda entries taken
 * from a stub tree, so the tests depend on the infrastructure code only (not on handlers being
 * written yet) and run in seconds.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { FUNCTIONS } from '#functions/manifest.ts';
import { buildApp } from '#infra/build-app.ts';
import type { CfnTemplate } from '#infra/definition.ts';
import type { LifeboatStack } from '#infra/stack.ts';

/** A folder with a stub module for every manifest entry and a lock file, as NodejsFunction wants. */
function stubProjectRoot(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'lifeboat-infra-'));
  for (const spec of FUNCTIONS) {
    const file = path.join(root, spec.entry);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `export const ${spec.handler} = async () => ({});\n`);
  }
  writeFileSync(path.join(root, 'package-lock.json'), '{}\n');
  return root;
}

export interface Synthesized {
  stack: LifeboatStack;
  template: Template;
  json: CfnTemplate;
}

/**
 * Builds the app on a stub tree (bundling skipped) and hands it to `fn`; the stub tree and the
 * cloud assembly's folder are removed once `fn` returns or throws (building may throw too).
 */
export function withStubApp<T>(
  context: Record<string, unknown>,
  fn: (built: ReturnType<typeof buildApp>) => T,
): T {
  const projectRoot = stubProjectRoot();
  const outdir = mkdtempSync(path.join(tmpdir(), 'lifeboat-infra-out-'));
  try {
    return fn(
      buildApp({ 'lifeboat:skipBundling': true, 'lifeboat:projectRoot': projectRoot, ...context }, outdir),
    );
  } finally {
    rmSync(projectRoot, { recursive: true, force: true });
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Builds and synthesizes the app once (cdk-nag runs: it throws on unacknowledged findings). */
export function synthLifeboat(context: Record<string, unknown> = {}): Synthesized {
  return withStubApp(context, ({ app, stack }) => {
    const json = app.synth().getStackArtifact(stack.artifactId).template as CfnTemplate;
    return { stack, template: Template.fromJSON(json as unknown as Record<string, unknown>), json };
  });
}

/** The logical id of the resource whose construct path ends with `suffix` (`Runner/Policy/Resource`). */
export function logicalIdByPath(json: CfnTemplate, suffix: string): string {
  const found = Object.entries(json.Resources).find(([, r]) =>
    String(r.Metadata?.['aws:cdk:path'] ?? '').endsWith(`/${suffix}`),
  );
  if (!found) throw new Error(`no resource at */${suffix}`);
  return found[0];
}

/** Logical ids of the resources of one type. */
export function logicalIdsOfType(json: CfnTemplate, type: string): string[] {
  return Object.entries(json.Resources)
    .filter(([, resource]) => resource.Type === type)
    .map(([id]) => id);
}

/** An IAM policy statement as synthesized. */
export interface StatementJson {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
}

/** Statements of the policies attached to role `roleLogicalId` (inline, and overflow managed ones). */
export function statementsOfRole(json: CfnTemplate, roleLogicalId: string): StatementJson[] {
  const attached = JSON.stringify([{ Ref: roleLogicalId }]);
  return Object.values(json.Resources)
    .filter(
      (r) =>
        (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') &&
        JSON.stringify(r.Properties?.Roles) === attached,
    )
    .flatMap(
      (r) => (r.Properties?.PolicyDocument as { Statement?: StatementJson[] } | undefined)?.Statement ?? [],
    );
}

/** The actions of a statement as a list. */
export function actionsOf(statement: StatementJson): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}
