/**
 * The twin of the AWS schedule `rate(1 minute)` that invokes the dispatcher: a timer that wakes
 * it every interval, so requests left queued (a full slot, a lost wake-up) are picked up.
 */

/** Start invoking `wake` every `intervalSeconds`; returns a stop function. */
export function startScheduler(opts: {
  intervalSeconds: number;
  wake: () => Promise<void> | void;
  log?: (entry: Record<string, unknown>) => void;
}): () => void {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return; // the previous run is still going: skip, as a rate schedule would queue
    running = true;
    try {
      await opts.wake();
    } catch (err) {
      opts.log?.({ level: 'error', msg: 'scheduled dispatcher run failed', error: String(err) });
    } finally {
      running = false;
    }
  }, opts.intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
