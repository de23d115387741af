/**
 * The timer behind the SQS emulator's long polls. fauxqs wakes every 20 ms for as long as a
 * ReceiveMessage waits on a queue, to see whether a delayed message or an expired visibility
 * timeout made one available. A runner always has a long poll waiting, so an idle stack woke
 * 50 times a second per queue for nothing (and the storm's 200 simulated hosts 10,000 times),
 * since a message sent or made visible at once already wakes the waiters itself. Here the queue
 * wakes at its next deadline instead (the earliest delayed message or in-flight message), no
 * sooner than 20 ms and no later than a second after it armed: a deadline that appears while it
 * waits is met within that second, which is nothing beside the minutes of a visibility timeout.
 */

/** The soonest a queue with waiters checks its timers again (ms): fauxqs's own period. */
export const POLL_FLOOR_MS = 20;
/** The longest a queue with waiters goes without checking (ms). */
export const POLL_CAP_MS = 1000;

/** The parts of fauxqs's `SqsQueue` the timer reads and drives. */
export interface PolledQueue {
  pollWaiters: unknown[];
  pollTimer: NodeJS.Timeout | undefined;
  inflightMessages: Map<unknown, { visibilityDeadline: number }>;
  delayedMessages: { delayUntil?: number }[];
  fifoDelayed: Map<unknown, { delayUntil?: number }[]>;
  processTimers(): void;
  startPollTimerIfNeeded(): void;
}

/** The earliest instant (epoch ms) something of `queue` becomes available; undefined when none. */
export function nextDeadline(queue: PolledQueue): number | undefined {
  let next = Number.POSITIVE_INFINITY;
  for (const entry of queue.inflightMessages.values()) next = Math.min(next, entry.visibilityDeadline);
  const delayed = [queue.delayedMessages, ...queue.fifoDelayed.values()];
  for (const list of delayed) for (const msg of list) next = Math.min(next, msg.delayUntil ?? next);
  return Number.isFinite(next) ? next : undefined;
}

/** How long a queue waits before it checks its timers again (ms). */
export function pollDelayMs(queue: PolledQueue, now = Date.now()): number {
  const next = nextDeadline(queue);
  return Math.min(POLL_CAP_MS, Math.max(POLL_FLOOR_MS, next === undefined ? POLL_CAP_MS : next - now));
}

/**
 * Replaces `startPollTimerIfNeeded` of fauxqs's queue class: one timeout at a time, armed for
 * the next deadline and armed again while waiters remain. fauxqs clears `pollTimer` (with
 * clearInterval, which clears a timeout as well) once its last waiter left. Throws when the
 * class no longer has what this relies on.
 */
export function deadlinePollTimer(queueClass: { prototype: object }): void {
  const proto = queueClass.prototype as Partial<PolledQueue>;
  if (typeof proto.startPollTimerIfNeeded !== 'function' || typeof proto.processTimers !== 'function')
    throw new Error('fauxqs: SqsQueue no longer has startPollTimerIfNeeded and processTimers');
  proto.startPollTimerIfNeeded = function (this: PolledQueue) {
    if (this.pollTimer) return;
    const arm = () => {
      this.pollTimer = setTimeout(() => {
        this.processTimers();
        if (this.pollWaiters.length > 0) arm();
        else this.pollTimer = undefined;
      }, pollDelayMs(this));
    };
    arm();
  };
}
