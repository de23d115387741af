/**
 * What `lifeboat admin bootstrap` relies on in the template: CloudFormation names the users and
 * tokens tables `<stack>-<logicalId>-<suffix>` with logical ids starting `TablesUsers` and
 * `TablesTokens` (how --stack finds them), and the stack outputs both names (for --users-table
 * and --tokens-table).
 */
import { describe, expect, it } from 'vitest';
import { logicalIdByPath, synthLifeboat } from './synth.ts';

describe('admin bootstrap in the template', () => {
  it('has the table logical ids --stack looks for, and outputs their names', () => {
    const { json } = synthLifeboat();
    const users = logicalIdByPath(json, 'Tables/Users/Resource');
    const tokens = logicalIdByPath(json, 'Tables/Tokens/Resource');
    expect(users).toMatch(/^TablesUsers[0-9A-F]{8}$/);
    expect(tokens).toMatch(/^TablesTokens[0-9A-F]{8}$/);
    const outputs = (json as unknown as { Outputs: Record<string, { Value: unknown }> }).Outputs;
    expect(outputs.UsersTableName?.Value).toEqual({ Ref: users });
    expect(outputs.TokensTableName?.Value).toEqual({ Ref: tokens });
  });
});
