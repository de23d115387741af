import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.ts';
import { scheduleActionOf, scheduleSample } from './schedule-actions.ts';

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
      /action: a datastore's schedule can verify or drill \(got "backup"\)/,
    );
    expect(() => scheduleActionOf('vm', { action: 'verify' })).toThrow(/action: a VM's schedule can backup/);
    expect(() => scheduleActionOf('vm', { action: 'drill' })).toThrow(
      /action: a VM's schedule can backup \(/,
    );
    expect(() => scheduleActionOf('job', { action: 'verify' })).toThrow(
      /a backup job's schedule can backup or drill/,
    );
  });

  it("refuses a backup's fields on a datastore verify", () => {
    expect(() => scheduleActionOf('datastore', { action: 'verify', datastoreId: 3 })).toThrow(
      /datastoreId: a datastore's schedule acts on its own datastore/,
    );
    expect(() => scheduleActionOf('datastore', { reset: true })).toThrow(/reset: only a backup/);
    expect(scheduleActionOf('datastore', { reset: false })).toBe('verify');
    expect(scheduleActionOf('vm', { reset: true, datastoreId: 1 })).toBe('backup');
  });

  it('takes a drill on a datastore or a job and a verify on a datastore, each with a sample; a backup takes none', () => {
    expect(scheduleActionOf('datastore', { action: 'drill', sample: 3 })).toBe('drill');
    expect(scheduleActionOf('job', { action: 'drill' })).toBe('drill');
    expect(scheduleActionOf('datastore', { sample: 200 })).toBe('verify');
    expect(() => scheduleActionOf('datastore', { action: 'drill', sample: 21 })).toThrow(
      'sample: a drill restores at most 20 images a run (got 21)',
    );
    expect(() => scheduleActionOf('job', { action: 'backup', sample: 1 })).toThrow(
      'sample: only a verify or a drill takes a sample of images (the action is backup)',
    );
    expect(() => scheduleActionOf('vm', { datastoreId: 1, sample: 1 })).toThrow(
      /sample: only a verify or a drill/,
    );
  });
});

describe('scheduleSample', () => {
  it("keeps a drill's sample or 1, a verify's only when asked", () => {
    expect(scheduleSample('drill', undefined)).toBe(1);
    expect(scheduleSample('drill', 5)).toBe(5);
    expect(scheduleSample('verify', undefined)).toBeUndefined();
    expect(scheduleSample('verify', 250)).toBe(250);
  });
});
