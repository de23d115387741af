/**
 * The local names of the template's resources, one place for local mode's functions (their
 * environment) and its IAM policies: CloudFormation generates names in AWS, local mode derives
 * them from logical ids and construct paths.
 */
import { TABLES } from '#functions/tables.ts';
import { type CfnTemplate, cdkPath } from '#infra/definition.ts';
import { LOCAL_ACCOUNT } from './config.ts';

/** The local ARN of a role: its logical id as name. */
export function localRoleArn(logicalId: string): string {
  return `arn:aws:iam::${LOCAL_ACCOUNT}:role/${logicalId}`;
}

/** The TABLES key (`progress`) of a table resource, from its path `<stack>/Tables/<Key>/Resource`. */
export function tableKeyOf(template: CfnTemplate, logicalId: string): string | undefined {
  const name = cdkPath(template, logicalId)?.split('/').at(-2)?.toLowerCase();
  return TABLES.find((t) => name !== undefined && t.key.toLowerCase() === name)?.key;
}
