import { afterEach, describe, expect, it } from 'vitest';
import type { User } from '#core/model.ts';
import { assertCaller, authorize, neededRight, resetRightsTable } from './access.ts';

const alice: User = { name: 'alice', group: 'web', role: 'user', createdAt: '2026-01-01T00:00:00Z' };
const vm = { id: 7, owner: 'alice', group: 'web', permissions: 'um-------' };
const backup = { user: alice, route: 'POST /vms/{id}/backup' };

afterEach(() => {
  delete process.env.ACTION_RIGHTS;
  resetRightsTable();
});

describe('route rights', () => {
  it('refuses a one-shot backup to the owner of a VM without its admin bit, naming the right and the VM', () => {
    expect(() => authorize(backup, 'vm', vm)).toThrow('alice may not admin VM 7');
    expect(() => authorize(backup, 'vm', { ...vm, permissions: 'uma------' })).not.toThrow();
  });

  it('follows the deployment’s ACTION_RIGHTS', () => {
    process.env.ACTION_RIGHTS = '{"POST /vms/{id}/backup": {"vm": "manage"}}';
    resetRightsTable();
    expect(neededRight('POST /vms/{id}/backup', 'vm')).toBe('manage');
    expect(() => authorize(backup, 'vm', vm)).not.toThrow();
  });

  it('refuses users on admin rows, and self rows naming someone else', () => {
    expect(() => assertCaller(alice, 'POST /datastores', {})).toThrow('only admins may create datastores');
    expect(() => assertCaller(alice, 'GET /users/{name}', { name: 'bob' })).toThrow(
      'only admins may show other users',
    );
    expect(() => assertCaller(alice, 'GET /users/{name}', { name: 'alice' })).not.toThrow();
    expect(() => assertCaller({ ...alice, role: 'admin' }, 'POST /datastores', {})).not.toThrow();
  });
});
