import { describe, expect, it } from 'vitest';
import { enabledState, isSilent, takesWork } from './host-health.ts';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

describe('host health rules', () => {
  it.each([
    ['MONITORED', true],
    ['INIT', true],
    ['ERROR', true],
    ['OFFLINE', false],
    ['DISABLED', false],
  ] as const)('a %s host takes work: %s', (state, expected) => {
    expect(takesWork({ state })).toBe(expected);
  });

  it('is silent from the offline time on, or without any report', () => {
    expect(isSilent({ lastHeartbeat: ago(179) }, NOW, 180)).toBe(false);
    expect(isSilent({ lastHeartbeat: ago(180) }, NOW, 180)).toBe(true);
    expect(isSilent({}, NOW, 180)).toBe(true);
    expect(isSilent({ lastHeartbeat: 'not a time' }, NOW, 180)).toBe(true);
  });

  it('enables into MONITORED after a recent report, else OFFLINE', () => {
    expect(enabledState({ lastHeartbeat: ago(10) }, NOW, 180)).toBe('MONITORED');
    expect(enabledState({ lastHeartbeat: ago(600) }, NOW, 180)).toBe('OFFLINE');
  });
});
