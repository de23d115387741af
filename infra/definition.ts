/**
 * Turns a state machine of a synthesized CloudFormation template back into runnable ASL.
 * The CDK writes `DefinitionString` as an `Fn::Join` of JSON fragments and tokens (`Ref` of the
 * partition, `Fn::GetAtt` of Lambda ARNs); local mode resolves the tokens to values of its own
 * (e.g. an ARN it maps back to a manifest entry) and runs the very definition deployed in AWS.
 * Pure: no CDK, no file system; the template is plain JSON.
 */

/** The parts of a CloudFormation template this module reads. */
export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

/** A token to replace: `{ Ref }`, or `{ Fn::GetAtt }` of one attribute. Pseudo parameters are Refs. */
export type CfnToken =
  | { kind: 'Ref'; logicalId: string }
  | { kind: 'GetAtt'; logicalId: string; attribute: string };

/** Gives the value a token stands for (an ARN, a partition, ...). */
export type TokenResolver = (token: CfnToken) => string;

/** One ASL state: its `Type` plus the fields of that type. */
export type AslState = { Type: string } & Record<string, unknown>;

/** An ASL state machine definition. */
export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
  QueryLanguage?: string;
  Comment?: string;
  TimeoutSeconds?: number;
}

/**
 * The ASL of state machine `stateMachineLogicalId` in `template`, tokens replaced by
 * `substitute`. Replacements land inside JSON strings, so they are escaped as such.
 * Throws when the resource is not a state machine or the definition uses an intrinsic this
 * module does not know (only Ref, Fn::GetAtt, Fn::Join and Fn::Sub are produced by the CDK).
 */
export function resolveDefinition(
  template: CfnTemplate,
  stateMachineLogicalId: string,
  substitute: TokenResolver,
): AslDefinition {
  const resource = template.Resources[stateMachineLogicalId];
  if (resource?.Type !== 'AWS::StepFunctions::StateMachine') {
    throw new Error(`${stateMachineLogicalId} is not a state machine of this template`);
  }
  const props = resource.Properties ?? {};
  if (props.DefinitionString === undefined) {
    throw new Error(`State machine ${stateMachineLogicalId} has no DefinitionString`);
  }
  const escaped: TokenResolver = (token) => JSON.stringify(substitute(token)).slice(1, -1);
  let text = resolveValue(props.DefinitionString, escaped);
  const substitutions = props.DefinitionSubstitutions;
  if (substitutions && typeof substitutions === 'object') {
    for (const [name, value] of Object.entries(substitutions)) {
      text = text.replaceAll(`\${${name}}`, resolveValue(value, escaped));
    }
  }
  const definition = JSON.parse(text) as AslDefinition;
  if (typeof definition.StartAt !== 'string' || typeof definition.States !== 'object') {
    throw new Error(`State machine ${stateMachineLogicalId} has no StartAt or States`);
  }
  return definition;
}

/** Resolves one CloudFormation value to a string. */
export function resolveValue(value: unknown, substitute: TokenResolver): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value);
    const [key, arg] = entries[0] ?? [];
    if (entries.length === 1 && key !== undefined) {
      if (key === 'Ref' && typeof arg === 'string') return substitute({ kind: 'Ref', logicalId: arg });
      if (key === 'Fn::GetAtt') return substitute(getAtt(arg));
      if (key === 'Fn::Join' && Array.isArray(arg) && typeof arg[0] === 'string' && Array.isArray(arg[1])) {
        return arg[1].map((part: unknown) => resolveValue(part, substitute)).join(arg[0]);
      }
      if (key === 'Fn::Sub') return resolveSub(arg, substitute);
    }
  }
  throw new Error(`Cannot resolve CloudFormation value ${JSON.stringify(value)}`);
}

function getAtt(arg: unknown): CfnToken {
  const parts = typeof arg === 'string' ? splitOnce(arg) : arg;
  if (Array.isArray(parts) && typeof parts[0] === 'string' && typeof parts[1] === 'string') {
    return { kind: 'GetAtt', logicalId: parts[0], attribute: parts[1] };
  }
  throw new Error(`Cannot resolve Fn::GetAtt ${JSON.stringify(arg)}`);
}

function splitOnce(text: string): [string, string] | undefined {
  const dot = text.indexOf('.');
  return dot < 0 ? undefined : [text.slice(0, dot), text.slice(dot + 1)];
}

function resolveSub(arg: unknown, substitute: TokenResolver): string {
  const [body, vars] = typeof arg === 'string' ? [arg, {}] : Array.isArray(arg) ? [arg[0], arg[1] ?? {}] : [];
  if (typeof body !== 'string' || typeof vars !== 'object' || vars === null) {
    throw new Error(`Cannot resolve Fn::Sub ${JSON.stringify(arg)}`);
  }
  const named = vars as Record<string, unknown>;
  // `${!Literal}` stays `${Literal}`; `${Name}` is a variable, a Ref, or `${Id.Attr}` a GetAtt.
  return body.replace(/\$\{(!?)([^}]+)\}/g, (_all, bang: string, name: string) => {
    if (bang) return `\${${name}}`;
    if (name in named) return resolveValue(named[name], substitute);
    const att = name.startsWith('AWS::') ? undefined : splitOnce(name);
    return substitute(
      att ? { kind: 'GetAtt', logicalId: att[0], attribute: att[1] } : { kind: 'Ref', logicalId: name },
    );
  });
}

/** A readable stand-in for a token (`{{Ref:AWS::Partition}}`, `{{GetAtt:Api1234.Arn}}`), for tests and dry runs. */
export const placeholder: TokenResolver = (token) =>
  token.kind === 'Ref' ? `{{Ref:${token.logicalId}}}` : `{{GetAtt:${token.logicalId}.${token.attribute}}}`;

/** The construct path CDK recorded for a resource (`Lifeboat/Backup/Resource`), if path metadata is on. */
export function cdkPath(template: CfnTemplate, logicalId: string): string | undefined {
  const path = template.Resources[logicalId]?.Metadata?.['aws:cdk:path'];
  return typeof path === 'string' ? path : undefined;
}

/**
 * The logical id of the resource of `type` whose construct path is `<stack>/<id>/Resource`:
 * how local mode finds the `Backup` / `Restore` machines and the function of a manifest id.
 */
export function findLogicalId(template: CfnTemplate, type: string, constructId: string): string | undefined {
  return Object.entries(template.Resources).find(
    ([logicalId, resource]) =>
      resource.Type === type &&
      cdkPath(template, logicalId)?.split('/').slice(-2).join('/') === `${constructId}/Resource`,
  )?.[0];
}

/**
 * The construct id (= FUNCTIONS manifest id, e.g. `AdmitBackup`) of the Lambda function with
 * logical id `logicalId`, from its path `<stack>/<id>/Resource`; undefined for other resources.
 */
export function functionIdOf(template: CfnTemplate, logicalId: string): string | undefined {
  if (template.Resources[logicalId]?.Type !== 'AWS::Lambda::Function') return undefined;
  const parts = cdkPath(template, logicalId)?.split('/') ?? [];
  return parts.length >= 3 && parts.at(-1) === 'Resource' ? parts.at(-2) : undefined;
}
