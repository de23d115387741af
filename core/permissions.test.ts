import { describe, expect, it } from 'vitest';
import { Forbidden } from './errors.ts';
import { can, canManage, defaultOwnership, requireRight } from './permissions.ts';

const admin = { name: 'root', group: 'admins', role: 'admin' } as const;
const alice = { name: 'alice', group: 'dev', role: 'user' } as const;
const bob = { name: 'bob', group: 'dev', role: 'user' } as const;
const eve = { name: 'eve', group: 'other', role: 'user' } as const;

describe('canManage', () => {
  const vm = { owner: 'alice', group: 'dev', permissions: 'um-------' };

  it('admins manage everything', () => {
    expect(canManage(admin, vm)).toBe(true);
  });

  it('the owner manages with the owner manage bit', () => {
    expect(canManage(alice, vm)).toBe(true);
    expect(canManage(alice, { ...vm, permissions: 'u--------' })).toBe(false);
  });

  it('the group gets the group bits, others the other bits', () => {
    expect(canManage(bob, vm)).toBe(false);
    expect(canManage(bob, { ...vm, permissions: 'um-um----' })).toBe(true);
    expect(canManage(eve, { ...vm, permissions: 'um-um----' })).toBe(false);
    expect(canManage(eve, { ...vm, permissions: 'um-u--um-' })).toBe(true);
  });

  it('the owner does not inherit the group bits', () => {
    expect(canManage(alice, { ...vm, permissions: 'u--um----' })).toBe(false);
  });
});

describe('can and requireRight', () => {
  it('checks use separately from manage', () => {
    const ds = { owner: 'root', group: 'dev', permissions: 'um-u-----' };
    expect(can(bob, ds, 'use')).toBe(true);
    expect(can(bob, ds, 'manage')).toBe(false);
  });

  it('throws Forbidden naming the user, right and object', () => {
    const vm = { owner: 'alice', group: 'dev', permissions: 'um-------' };
    expect(() => requireRight(eve, vm, 'manage', 'VM 7')).toThrow(new Forbidden('eve may not manage VM 7'));
    expect(() => requireRight(alice, vm, 'manage', 'VM 7')).not.toThrow();
  });
});

describe('defaultOwnership', () => {
  it('gives the creator use and manage only', () => {
    const owned = defaultOwnership(alice);
    expect(owned).toEqual({ owner: 'alice', group: 'dev', permissions: 'um-------' });
    expect(canManage(alice, owned)).toBe(true);
    expect(can(bob, owned, 'use')).toBe(false);
  });
});
