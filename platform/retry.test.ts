import { describe, expect, it } from 'vitest';
import { exponential, retry } from './retry.ts';

class Busy extends Error {
  override name = 'Busy';
}

describe('retry', () => {
  it('tries again on a retryable error and answers the first success', async () => {
    const seen: number[] = [];
    const value = await retry(
      async (attempt) => {
        seen.push(attempt);
        if (attempt < 3) throw new Busy();
        return 'done';
      },
      { attempts: 5, retryOn: (e) => e instanceof Busy },
    );
    expect(value).toBe('done');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('throws any other error at once', async () => {
    let tries = 0;
    const fail = retry(
      async () => {
        tries++;
        throw new TypeError('bad');
      },
      { attempts: 5, retryOn: (e) => e instanceof Busy },
    );
    await expect(fail).rejects.toThrow('bad');
    expect(tries).toBe(1);
  });

  it('stops after `attempts` tries with the last error, or what `exhausted` makes of it', async () => {
    let tries = 0;
    const busy = async () => {
      tries++;
      throw new Busy(`try ${tries}`);
    };
    await expect(retry(busy, { attempts: 3, retryOn: () => true })).rejects.toThrow('try 3');
    expect(tries).toBe(3);
    await expect(
      retry(busy, { attempts: 2, retryOn: () => true, exhausted: (last) => new Error(`gave up: ${last}`) }),
    ).rejects.toThrow('gave up: Busy: try 5');
  });

  it('pauses between tries as `delayMs` says', async () => {
    const pauses: number[] = [];
    await retry(
      async (attempt) => {
        if (attempt < 4) throw new Busy();
      },
      {
        attempts: 4,
        retryOn: () => true,
        delayMs: (n) => {
          pauses.push(exponential(1)(n));
          return 1;
        },
      },
    );
    expect(pauses).toEqual([1, 2, 4]);
  });

  it('stops at once when its signal aborts during a pause, leaving with the last error', async () => {
    const stop = new AbortController();
    let tries = 0;
    const started = Date.now();
    const pending = retry(
      async () => {
        tries++;
        throw new Busy(`try ${tries}`);
      },
      { attempts: Number.POSITIVE_INFINITY, retryOn: () => true, delayMs: () => 60_000, signal: stop.signal },
    );
    setTimeout(() => stop.abort(), 20);
    await expect(pending).rejects.toThrow('try 1');
    expect(tries).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
