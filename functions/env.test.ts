import { afterEach, describe, expect, it } from 'vitest';
import { monitorIntervalMinutes } from './operations/capacity.ts';
import { auditRetentionDays } from './repo/audit.ts';
import { capacityRetentionDays } from './repo/capacity.ts';

const NAMES = ['MONITOR_INTERVAL_MINUTES', 'CAPACITY_RETENTION_DAYS', 'AUDIT_RETENTION_DAYS'];
afterEach(() => {
  for (const name of NAMES) delete process.env[name];
});

describe('integer settings from the environment', () => {
  it('take their defaults when unset or empty', () => {
    process.env.AUDIT_RETENTION_DAYS = '';
    expect([monitorIntervalMinutes(), capacityRetentionDays(), auditRetentionDays()]).toEqual([10, 400, 400]);
  });

  it('MONITOR_INTERVAL_MINUTES may be 0 (off); a negative or a fraction fails by name', () => {
    process.env.MONITOR_INTERVAL_MINUTES = '0';
    expect(monitorIntervalMinutes()).toBe(0);
    process.env.MONITOR_INTERVAL_MINUTES = '-5';
    expect(() => monitorIntervalMinutes()).toThrow(
      'MONITOR_INTERVAL_MINUTES must be a whole number of at least 0 (got "-5")',
    );
  });

  it('retention days must be positive integers', () => {
    process.env.CAPACITY_RETENTION_DAYS = '30';
    expect(capacityRetentionDays()).toBe(30);
    process.env.CAPACITY_RETENTION_DAYS = '0';
    expect(() => capacityRetentionDays()).toThrow(
      'CAPACITY_RETENTION_DAYS must be a positive integer (got "0")',
    );
    process.env.AUDIT_RETENTION_DAYS = '1.5';
    expect(() => auditRetentionDays()).toThrow('AUDIT_RETENTION_DAYS must be a positive integer (got "1.5")');
  });
});
