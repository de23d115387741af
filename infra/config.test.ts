import type { Node } from 'constructs';
import { describe, expect, it } from 'vitest';
import { readConfig } from './config.ts';

/** A construct node holding only `context` (`-c` values arrive as strings). */
const node = (context: Record<string, unknown>) =>
  ({ tryGetContext: (key: string) => context[key] }) as unknown as Node;

describe('readConfig: whole-number settings', () => {
  it('monitorIntervalMinutes: 10 by default, 0 turns the monitors off, a negative or a fraction is refused', () => {
    expect(readConfig(node({})).monitorIntervalMinutes).toBe(10);
    expect(readConfig(node({ monitorIntervalMinutes: '0' })).monitorIntervalMinutes).toBe(0);
    expect(readConfig(node({ monitorIntervalMinutes: '30' })).monitorIntervalMinutes).toBe(30);
    for (const bad of ['-1', '1.5', 'often'])
      expect(() => readConfig(node({ monitorIntervalMinutes: bad }))).toThrow(
        `CDK context monitorIntervalMinutes must be a whole number of at least 0, got "${bad}"`,
      );
  });

  it('retention days are positive: 0 is refused, by name', () => {
    expect(readConfig(node({})).capacityRetentionDays).toBe(400);
    expect(readConfig(node({ capacityRetentionDays: 30 })).capacityRetentionDays).toBe(30);
    expect(() => readConfig(node({ capacityRetentionDays: '0' }))).toThrow(
      'CDK context capacityRetentionDays must be a positive integer, got "0"',
    );
  });
});

describe('readConfig: consoleSite', () => {
  it('is on by default, turned off by false or "false", and refuses anything else by name', () => {
    expect(readConfig(node({})).consoleSite).toBe(true);
    expect(readConfig(node({ consoleSite: false })).consoleSite).toBe(false);
    expect(readConfig(node({ consoleSite: 'false' })).consoleSite).toBe(false);
    expect(readConfig(node({ consoleSite: 'true' })).consoleSite).toBe(true);
    expect(() => readConfig(node({ consoleSite: 'no' }))).toThrow(
      'CDK context consoleSite must be true or false, got "no"',
    );
  });
});
