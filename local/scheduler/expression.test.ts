/** EventBridge Scheduler expressions fire at the times AWS would: zone, start and end dates. */
import { describe, expect, it } from 'vitest';
import { checkTimeZone, ExpressionError, nextFiring, parseExpression, type Timing } from './expression.ts';

const t = (iso: string) => Date.parse(iso);
const timing = (expression: string, extra: Partial<Timing> = {}): Timing => ({
  expression: parseExpression(expression),
  zone: 'UTC',
  createdAt: t('2026-01-01T00:00:00Z'),
  ...extra,
});
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('schedule expressions', () => {
  it('at() is a wall-clock time in the schedule zone', () => {
    expect(iso(nextFiring(timing('at(2026-07-01T02:00:05)'), 0))).toBe('2026-07-01T02:00:05.000Z');
    const paris = timing('at(2026-07-01T02:00:00)', { zone: 'Europe/Paris' });
    expect(iso(nextFiring(paris, 0))).toBe('2026-07-01T00:00:00.000Z');
    // Past its time it never fires again, nor after its end date.
    expect(nextFiring(paris, t('2026-07-01T00:00:00Z'))).toBeUndefined();
    expect(nextFiring({ ...paris, endDate: t('2026-06-30T00:00:00Z') }, 0)).toBeUndefined();
  });

  it('rate() counts from the start date, else one interval after creation', () => {
    const fromCreation = timing('rate(5 minutes)');
    expect(iso(nextFiring(fromCreation, 0))).toBe('2026-01-01T00:05:00.000Z');
    expect(iso(nextFiring(fromCreation, t('2026-01-01T00:05:00Z')))).toBe('2026-01-01T00:10:00.000Z');
    const fromStart = timing('rate(1 hour)', { startDate: t('2026-02-01T10:30:00Z') });
    expect(iso(nextFiring(fromStart, 0))).toBe('2026-02-01T10:30:00.000Z');
    expect(iso(nextFiring(fromStart, t('2026-02-01T12:00:00Z')))).toBe('2026-02-01T12:30:00.000Z');
    const ended = { ...fromStart, endDate: t('2026-02-01T12:00:00Z') };
    expect(nextFiring(ended, t('2026-02-01T11:30:00Z'))).toBeUndefined();
  });

  it('cron() follows the zone across daylight saving time', () => {
    const ny = timing('cron(0 2 * * ? *)', { zone: 'America/New_York' });
    expect(iso(nextFiring(ny, t('2026-01-10T00:00:00Z')))).toBe('2026-01-10T07:00:00.000Z');
    expect(iso(nextFiring(ny, t('2026-07-10T00:00:00Z')))).toBe('2026-07-10T06:00:00.000Z');
    // 02:30 does not exist in Paris on 2026-03-29: it fires an hour on, as the clock reads 03:30.
    const paris = timing('cron(30 2 * * ? *)', { zone: 'Europe/Paris' });
    expect(iso(nextFiring(paris, t('2026-03-28T12:00:00Z')))).toBe('2026-03-29T01:30:00.000Z');
    expect(iso(nextFiring(paris, t('2026-03-29T12:00:00Z')))).toBe('2026-03-30T00:30:00.000Z');
  });

  it('cron() honours the start and end dates', () => {
    const hourly = timing('cron(15 * * * ? *)', {
      startDate: t('2026-03-01T10:20:00Z'),
      endDate: t('2026-03-01T12:15:00Z'),
    });
    expect(iso(nextFiring(hourly, 0))).toBe('2026-03-01T11:15:00.000Z');
    expect(iso(nextFiring(hourly, t('2026-03-01T11:15:00Z')))).toBe('2026-03-01T12:15:00.000Z');
    expect(nextFiring(hourly, t('2026-03-01T12:15:00Z'))).toBeUndefined();
  });

  it('refuses what EventBridge refuses', () => {
    for (const bad of [
      'rate(1 minutes)',
      'rate(5 minute)',
      'rate(0 minutes)',
      'rate(10 seconds)',
      'cron(0 2 * * *)',
      'cron(0 2 * * 1 *)',
      'at(2026-02-30T00:00:00)',
      'at(2026-02-01T00:00)',
      'every day',
    ]) {
      expect(() => parseExpression(bad), bad).toThrow(ExpressionError);
    }
    expect(parseExpression('rate(10 seconds)', true)).toEqual({ kind: 'rate', ms: 10_000 });
    expect(() => checkTimeZone('Mars/Olympus')).toThrow(ExpressionError);
    expect(() => checkTimeZone('Europe/Paris')).not.toThrow();
  });
});
