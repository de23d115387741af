import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.ts';
import { parseId, requestRank } from './ids.ts';

describe('requestRank', () => {
  it('inverts the priority, zero-padded, then the creation time', () => {
    expect(requestRank(0, '2026-01-01T00:00:00.000Z')).toBe('99#2026-01-01T00:00:00.000Z');
    expect(requestRank(99, '2026-01-01T00:00:00.000Z')).toBe('00#2026-01-01T00:00:00.000Z');
    expect(requestRank(95, '2026-01-01T00:00:00.000Z')).toBe('04#2026-01-01T00:00:00.000Z');
  });

  it('sorts higher priority first, then older first', () => {
    const ranks = [
      requestRank(10, '2026-01-02T00:00:00.000Z'),
      requestRank(50, '2026-01-03T00:00:00.000Z'),
      requestRank(10, '2026-01-01T00:00:00.000Z'),
      requestRank(5, '2026-01-01T00:00:00.000Z'),
    ];
    expect([...ranks].sort()).toEqual([ranks[1], ranks[2], ranks[0], ranks[3]]);
  });

  it('rejects priorities outside 0-99', () => {
    expect(() => requestRank(100, 'x')).toThrow(ValidationError);
    expect(() => requestRank(-1, 'x')).toThrow(ValidationError);
    expect(() => requestRank(1.5, 'x')).toThrow(ValidationError);
  });
});

describe('parseId', () => {
  it('parses numeric ids', () => {
    expect(parseId('63', 'VM id')).toBe(63);
    expect(parseId('0', 'VM id')).toBe(0);
  });

  it('names what is wrong', () => {
    expect(() => parseId('x', 'VM id')).toThrow('VM id must be a non-negative integer (got "x")');
    expect(() => parseId(undefined, 'VM id')).toThrow(ValidationError);
    expect(() => parseId('-1', 'VM id')).toThrow(ValidationError);
  });
});
