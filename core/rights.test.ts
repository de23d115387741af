import { describe, expect, it } from 'vitest';
import { DEFAULT_ROUTE_RIGHTS, parseActionRights, routeRights } from './rights.ts';

describe('the rights table', () => {
  it('asks ADMIN on the VM for one-shot backups and MANAGE for the batch interface, by default', () => {
    expect(DEFAULT_ROUTE_RIGHTS['POST /vms/{id}/backup']?.objects).toEqual({ vm: 'admin', datastore: 'use' });
    expect(DEFAULT_ROUTE_RIGHTS['POST /vms/{id}/schedules']?.objects).toEqual({
      vm: 'manage',
      datastore: 'use',
    });
    expect(DEFAULT_ROUTE_RIGHTS['PUT /vms/{id}/backup-config']?.objects).toEqual({ vm: 'manage' });
    expect(DEFAULT_ROUTE_RIGHTS['POST /images/{id}/restore']?.objects).toEqual({ image: 'use', vm: 'admin' });
    expect(DEFAULT_ROUTE_RIGHTS['POST /datastores']?.caller).toBe('admin');
  });

  it('takes a deployment’s changes of an object row, as VM_ADMIN_ACTIONS', () => {
    const table = routeRights(parseActionRights('{"POST /vms/{id}/backup": {"vm": "manage"}}'));
    expect(table['POST /vms/{id}/backup']?.objects).toEqual({ vm: 'manage', datastore: 'use' });
    // The defaults are left as they were.
    expect(DEFAULT_ROUTE_RIGHTS['POST /vms/{id}/backup']?.objects?.vm).toBe('admin');
  });

  it('refuses a change that would change nothing or cannot apply, naming it', () => {
    expect(() => parseActionRights('{"POST /vm/{id}/backup": {"vm": "manage"}}')).toThrow(
      'ACTION_RIGHTS: no route "POST /vm/{id}/backup"',
    );
    expect(() => parseActionRights('{"GET /config": {"vm": "use"}}')).toThrow(
      'ACTION_RIGHTS: route GET /config has no vm row to change',
    );
    expect(() => parseActionRights('{"POST /vms/{id}/backup": {"vm": "root"}}')).toThrow(/^ACTION_RIGHTS: /);
    expect(() => parseActionRights('{"POST /vms/{id}/backup": {"host": "use"}}')).toThrow(/^ACTION_RIGHTS: /);
    expect(() => parseActionRights('not json')).toThrow(/^ACTION_RIGHTS: must be JSON/);
    expect(parseActionRights('')).toEqual({});
  });
});
