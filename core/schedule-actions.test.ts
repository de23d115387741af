import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.ts';
import { scheduleActionOf } from './schedule-actions.ts';

describe('scheduleActionOf', () => {
  it("answers the target's default action when none is asked, and the one asked when the target takes it", () => {
    expect(scheduleActionOf('vm', {})).toBe('backup');
    expect(scheduleActionOf('job', { action: 'backup' })).toBe('backup');
    expect(scheduleActionOf('datastore', {})).toBe('verify');
    expect(scheduleActionOf('datastore', { action: 'verify' })).toBe('verify');
  });

  it('refuses an action the target does not take, naming what it takes', () => {
    expect(() => scheduleActionOf('datastore', { action: 'backup' })).toThrow(ValidationError);
    expect(() => scheduleActionOf('datastore', { action: 'backup' })).toThrow(
      /action: a datastore's schedule can verify \(got "backup"\)/,
    );
    expect(() => scheduleActionOf('vm', { action: 'verify' })).toThrow(/action: a VM's schedule can backup/);
    expect(() => scheduleActionOf('job', { action: 'drill' })).toThrow(/a backup job's schedule can backup/);
  });

  it("refuses a backup's fields on a datastore verify", () => {
    expect(() => scheduleActionOf('datastore', { action: 'verify', datastoreId: 3 })).toThrow(
      /datastoreId: a datastore's schedule acts on its own datastore/,
    );
    expect(() => scheduleActionOf('datastore', { reset: true })).toThrow(/reset: only a backup/);
    expect(scheduleActionOf('datastore', { reset: false })).toBe('verify');
    expect(scheduleActionOf('vm', { reset: true, datastoreId: 1 })).toBe('backup');
  });
});
