/**
 * The audit table in the template: only the API reaches it, and only to append and query (no
 * update, no delete: only TTL removes a record); its retention is a deployment setting.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '#functions/manifest.ts';
import { findLogicalId } from '#infra/definition.ts';
import { actionsOf, logicalIdByPath, type Synthesized, statementsOfRole, synthLifeboat } from './synth.ts';

let synth: Synthesized;
beforeAll(() => {
  synth = synthLifeboat();
});

function fnProps(s: Synthesized, id: string): Record<string, unknown> {
  const logicalId = findLogicalId(s.json, 'AWS::Lambda::Function', id);
  if (!logicalId) throw new Error(`no function ${id}`);
  return s.json.Resources[logicalId]?.Properties ?? {};
}

/** The DynamoDB actions function `id` may take on the audit table or its indexes. */
function auditActions(id: string): string[] {
  const audit = logicalIdByPath(synth.json, 'Tables/Audit/Resource');
  const role = fnProps(synth, id).Role as { 'Fn::GetAtt': string[] };
  return statementsOfRole(synth.json, role['Fn::GetAtt'][0] ?? '')
    .filter((s) => JSON.stringify(s.Resource).includes(audit))
    .flatMap(actionsOf)
    .sort();
}

describe('audit table', () => {
  it('is append-and-query only, and for the API only', () => {
    expect(auditActions('Api')).toEqual(['dynamodb:PutItem', 'dynamodb:Query']);
    for (const spec of FUNCTIONS.filter((f) => f.id !== 'Api'))
      expect(auditActions(spec.id), spec.id).toEqual([]);
  });

  it('keeps records 400 days by default; context auditRetentionDays changes it', () => {
    const env = (s: Synthesized) =>
      (fnProps(s, 'Api').Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env(synth).AUDIT_RETENTION_DAYS).toBe('400');
    expect(env(synthLifeboat({ auditRetentionDays: '90' })).AUDIT_RETENTION_DAYS).toBe('90');
    expect(() => synthLifeboat({ auditRetentionDays: '0' })).toThrow(
      /auditRetentionDays must be a positive integer/,
    );
  });

  it('passes a deployment’s rights table changes (context actionRights) to the API, checked at synth', () => {
    const env = (s: Synthesized) =>
      (fnProps(s, 'Api').Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env(synth).ACTION_RIGHTS).toBeUndefined();
    const changed = synthLifeboat({ actionRights: '{"POST /vms/{id}/backup": {"vm": "manage"}}' });
    expect(JSON.parse(String(env(changed).ACTION_RIGHTS))).toEqual({
      'POST /vms/{id}/backup': { vm: 'manage' },
    });
    expect(() => synthLifeboat({ actionRights: '{"GET /config": {"vm": "use"}}' })).toThrow(
      'CDK context actionRights: ACTION_RIGHTS: route GET /config has no vm row to change',
    );
  });
});
