import { describe, expect, it } from 'vitest';
import { operationPath } from './api.ts';

describe('operationPath', () => {
  it('puts the parameters in, encoded, and the query after', () => {
    expect(operationPath('GET /vms/{id}/schedules/{schedId}', { id: 3, schedId: 7 })).toBe(
      '/vms/3/schedules/7',
    );
    expect(operationPath('GET /executions/{id}', { id: 'a/b c' })).toBe('/executions/a%2Fb%20c');
    expect(operationPath('GET /executions', undefined, { state: 'RUNNING', vmId: undefined })).toBe(
      '/executions?state=RUNNING',
    );
  });

  it('refuses a missing parameter rather than calling a wrong path', () => {
    expect(() => operationPath('GET /vms/{id}', {})).toThrow('GET /vms/{id}: no value for {id}');
  });
});
