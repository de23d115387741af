import { describe, expect, it } from 'vitest';
import { GroupName, parseLifetime, tokenState, tokenView, UserName } from './accounts.ts';
import { ValidationError } from './errors.ts';

describe('user and group names', () => {
  it.each(['alice', 'a', 'A.b_c-9', '9lives', 'x'.repeat(64), 'NaN'])('accepts %j', (name) => {
    expect(UserName.parse(name)).toBe(name);
  });
  it.each(['', 'host:1', 'enroll:kvm', 'a/b', '-x', '.x', '_x', 'x'.repeat(65), 'a b', 'é', 'a\n'])(
    'refuses %j',
    (name) => {
      expect(UserName.safeParse(name).success).toBe(false);
    },
  );
  it('keeps the host principals group for them', () => {
    expect(GroupName.safeParse('hosts').success).toBe(false);
    expect(GroupName.safeParse('web').success).toBe(true);
  });
});

describe('parseLifetime', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['12h', 43200],
    ['30d', 30 * 86400],
    ['4w', 28 * 86400],
    ['1826d', 1826 * 86400],
  ])('%s is %i seconds', (text, seconds) => {
    expect(parseLifetime(text)).toBe(seconds);
  });
  it('never is no expiry', () => {
    expect(parseLifetime('never')).toBeUndefined();
  });
  it.each(['', '30', '0d', '-1d', '1.5d', '30D', '1y', '1831d', ' 30d', 'forever'])('refuses %j', (text) => {
    expect(() => parseLifetime(text)).toThrow(ValidationError);
    expect(() => parseLifetime(text)).toThrow(/^expires: must be a positive number with a unit/);
  });
});

describe('token state', () => {
  const now = Date.parse('2026-12-06T06:00:00Z');
  it('is expired from its expiry on, revoked once revoked', () => {
    expect(tokenState({}, now)).toBe('active');
    expect(tokenState({ expiresAt: '2026-12-06T06:00:01Z' }, now)).toBe('active');
    expect(tokenState({ expiresAt: '2026-12-06T06:00:00Z' }, now)).toBe('expired');
    expect(tokenState({ expiresAt: 'garbage' }, now)).toBe('expired');
    expect(tokenState({ revokedAt: '2026-12-06T05:00:00Z' }, now)).toBe('revoked');
  });
  it('a listed token carries neither its hash nor its uid', () => {
    const view = tokenView(
      {
        hash: 'f'.repeat(64),
        id: '0123456789abcdef',
        user: 'a',
        uid: 'u1',
        name: 'n',
        createdAt: 'c',
        purgeAt: 1,
      },
      now,
    );
    expect(view).toEqual({ id: '0123456789abcdef', user: 'a', name: 'n', createdAt: 'c', state: 'active' });
  });
});
