import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { collectPair, parseExecutionId, parseId, parsePair, parsePort } from './args.ts';

describe('parseId', () => {
  it('accepts non-negative integers', () => {
    expect(parseId('0')).toBe(0);
    expect(parseId('63')).toBe(63);
  });
  it.each(['', 'abc', '-1', '1.5', '1e3', ' 7', '99999999999999999999'])('rejects %j', (text) => {
    expect(() => parseId(text)).toThrow(InvalidArgumentError);
  });
});

describe('parsePair and collectPair', () => {
  it('splits at the first = and keeps the rest of the value, = signs and spaces included', () => {
    expect(parsePair('RESTIC_PASSWORD=a=b c')).toEqual(['RESTIC_PASSWORD', 'a=b c']);
    expect(parsePair('BRIDGE_LIST=')).toEqual(['BRIDGE_LIST', '']);
  });
  it.each(['KEEP_LAST', '=3', '1X=2', 'A-B=1'])('rejects %j', (text) => {
    expect(() => parsePair(text)).toThrow(InvalidArgumentError);
  });
  it('accumulates repeated pairs, the last value of a key winning', () => {
    const record = ['A=1', 'B=2', 'A=3'].reduce<Record<string, string>>(
      (acc, text) => collectPair(text, acc),
      {},
    );
    expect(record).toEqual({ A: '3', B: '2' });
  });
});

describe('parseExecutionId and parsePort', () => {
  it('accepts execution ids and rejects path tricks', () => {
    expect(parseExecutionId('17')).toBe('17');
    expect(() => parseExecutionId('../17')).toThrow(InvalidArgumentError);
  });
  it('accepts ports 1-65535 only', () => {
    expect(parsePort('7780')).toBe(7780);
    expect(() => parsePort('0')).toThrow(InvalidArgumentError);
    expect(() => parsePort('65536')).toThrow(InvalidArgumentError);
  });
});
