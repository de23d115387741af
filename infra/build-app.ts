/**
 * Builds the CDK app in process: used by `infra/app.ts` (the `cdk` CLI) and by local mode, which
 * synthesizes the state machines to run the very same definitions.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ROUTES } from '#functions/api/routes.ts';
import { SKIP_BUNDLING } from './config.ts';
import { LifeboatStack } from './stack.ts';

/** Context key naming the stack (default `Lifeboat`). */
export const STACK_NAME = 'stackName';
/** Context key overriding the folder holding the Lambda entries (tests use a stub tree). */
export const PROJECT_ROOT = 'lifeboat:projectRoot';
/** Context key overriding the folder of the built web console (default: the repo's web/). */
export const WEB_ROOT = 'lifeboat:webRoot';

/**
 * Context every synth gets, from the CLI or in process, so both produce the same template.
 * Path metadata names each resource's construct path: local mode maps ARNs back through it.
 * Minimized policies merge statements, keeping the API role under the inline policy size limit.
 */
const DEFAULT_CONTEXT: Record<string, unknown> = {
  'aws:cdk:enable-path-metadata': true,
  '@aws-cdk/aws-iam:minimizePolicies': true,
};

/**
 * Creates the app and the one Lifeboat stack, with cdk-nag's AwsSolutions checks.
 * `context` adds to (and overrides) what the CDK CLI passes; `lifeboat:skipBundling: true`
 * skips esbuild (no Lambda code is built: for tests and local mode, which only need the template).
 * Call `app.synth()` to get the cloud assembly, written to `outdir`: the CDK CLI's folder, else a
 * new temporary folder the CDK never removes (in-process callers pass their own and remove it).
 */
export function buildApp(
  context: Record<string, unknown> = {},
  outdir?: string,
): { app: App; stack: LifeboatStack } {
  const app = new App({ context: { ...DEFAULT_CONTEXT, ...context }, ...(outdir && { outdir }) });
  if (isTrue(app.node.tryGetContext(SKIP_BUNDLING))) {
    // The CDK's own switch: assets of stacks not listed here are not bundled.
    app.node.setContext('aws:cdk:bundling-stacks', []);
  }
  const stackName = app.node.tryGetContext(STACK_NAME);
  const projectRoot = app.node.tryGetContext(PROJECT_ROOT);
  const webRoot = app.node.tryGetContext(WEB_ROOT);
  const stack = new LifeboatStack(app, typeof stackName === 'string' && stackName ? stackName : 'Lifeboat', {
    description: 'Lifeboat: backup and restore of KVM virtual machines (control plane)',
    routes: ROUTES,
    ...(typeof projectRoot === 'string' && { projectRoot }),
    ...(typeof webRoot === 'string' && { webRoot }),
  });
  // Findings fail the synth unless acknowledged with a reason (infra/nag-suppressions.ts).
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}

function isTrue(value: unknown): boolean {
  return value === true || value === 'true';
}
