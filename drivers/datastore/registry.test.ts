import { describe, expect, it } from 'vitest';
import { getDatastoreDriver } from './registry.ts';

describe('getDatastoreDriver', () => {
  it('finds restic and rsync by name and names the choices otherwise', () => {
    expect(getDatastoreDriver('restic').name).toBe('restic');
    expect(getDatastoreDriver('rsync').name).toBe('rsync');
    expect(() => getDatastoreDriver('tape')).toThrow(
      'datastore driver "tape" does not exist (drivers: restic, rsync)',
    );
  });
});
