/**
 * The twin of the AWS schedules in local mode. Every interval it wakes the dispatcher, as the
 * `rate(1 minute)` schedule does (requests left queued by a full slot or a lost wake-up start,
 * dead executions are swept); and every second it looks at the earliest next run of the
 * scheduled actions (the same table and evaluator the dispatcher uses) and wakes the dispatcher
 * when one is due, as the EventBridge schedule of each action does in AWS.
 */

/** When the next scheduled action is due (ISO time), or undefined: the schedules table's `due` index. */
async function earliestScheduledRun(): Promise<string | undefined> {
  const { earliestRun } = await import('#functions/repo/schedules.ts');
  return earliestRun();
}

/** Start the loops; returns a stop function. */
export function startScheduler(opts: {
  intervalSeconds: number;
  wake: () => Promise<void> | void;
  log?: (entry: Record<string, unknown>) => void;
  /** The earliest next run of a scheduled action (default: read from the schedules table). */
  nextDue?: () => Promise<string | undefined>;
  /** Seconds between two looks at `nextDue` (default 1). */
  dueCheckSeconds?: number;
}): () => void {
  let running = false;
  const wake = async (reason: string) => {
    if (running) return; // the previous run is still going: skip, as a rate schedule would queue
    running = true;
    try {
      await opts.wake();
    } catch (err) {
      opts.log?.({ level: 'error', msg: `${reason} dispatcher run failed`, error: String(err) });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => wake('scheduled'), opts.intervalSeconds * 1000);
  timer.unref();

  const nextDue = opts.nextDue ?? earliestScheduledRun;
  let looking = false;
  const dueTimer = setInterval(
    async () => {
      if (looking || running) return;
      looking = true;
      try {
        const due = await nextDue();
        if (due !== undefined && Date.parse(due) <= Date.now()) await wake('scheduled action');
      } catch (err) {
        opts.log?.({ level: 'warn', msg: 'scheduled actions not read', error: String(err) });
      } finally {
        looking = false;
      }
    },
    (opts.dueCheckSeconds ?? 1) * 1000,
  );
  dueTimer.unref();
  return () => {
    clearInterval(timer);
    clearInterval(dueTimer);
  };
}
