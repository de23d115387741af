/**
 * The one retry loop: try `fn` again while it fails with an error `retryOn` accepts, at most
 * `attempts` tries in all, pausing `delayMs(n)` after the n-th failure. Any other error leaves at
 * once; after the last try the last error leaves (or what `exhausted` makes of it). For lost
 * races on conditional writes, cancelled transactions and transient calls: whatever re-reads
 * and decides goes inside `fn`, so each try starts from the current state.
 */

/** How to retry. */
export interface RetryOptions {
  /** Tries in all, the first included (>= 1). */
  attempts: number;
  /** Whether a failure is worth another try. */
  retryOn: (error: unknown) => boolean;
  /** Pause in ms after failed try `attempt` (1-based) before the next; default none. */
  delayMs?: (attempt: number) => number;
  /** The error to throw when every try failed (default: the last one). */
  exhausted?: (last: unknown) => unknown;
  /** Stops the retrying: a pause ends at once and the last error leaves. */
  signal?: AbortSignal;
}

/** Pauses doubling from `firstMs`: firstMs, 2 x firstMs, 4 x firstMs... */
export function exponential(firstMs: number): (attempt: number) => number {
  return (attempt) => firstMs * 2 ** (attempt - 1);
}

/** Run `fn` (given its 1-based try number) until it succeeds or the rules above stop it. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!options.retryOn(error) || options.signal?.aborted) throw error;
      if (attempt >= options.attempts) throw options.exhausted ? options.exhausted(error) : error;
      await pause(options.delayMs?.(attempt) ?? 0, options.signal);
      if (options.signal?.aborted) throw error;
    }
  }
}

/** Waits `ms`, or less when `signal` aborts first. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
