import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  deadlinePollTimer,
  POLL_CAP_MS,
  POLL_FLOOR_MS,
  type PolledQueue,
  pollDelayMs,
} from './sqs-poll-timer.ts';

interface Queue extends PolledQueue {
  messages: unknown[];
  enqueue(msg: Record<string, unknown>): void;
  waitForMessages(seconds: number): Promise<void>;
}
type QueueClass = new (name: string, url: string, arn: string) => Queue;

/** fauxqs's own queue class (not exported by the package: its dist file, as local/sqs.ts loads it). */
let SqsQueue: QueueClass;
beforeAll(async () => {
  const mod = await import(new URL('./sqs/sqsStore.js', import.meta.resolve('fauxqs')).href);
  SqsQueue = mod.SqsQueue as QueueClass;
  deadlinePollTimer(SqsQueue);
});
afterEach(() => {
  vi.useRealTimers();
});

const T0 = Date.parse('2026-12-07T12:00:00Z');
const message = (id: string, delayUntil?: number) => ({
  messageId: id,
  body: id,
  messageAttributes: {},
  ...(delayUntil !== undefined && { delayUntil }),
});

function queue(): { q: Queue; checks: () => number } {
  const q = new SqsQueue('q', 'http://localhost/q', 'arn:aws:sqs:us-east-1:000000000000:q');
  const original = q.processTimers.bind(q);
  let count = 0;
  q.processTimers = () => {
    count++;
    original();
  };
  return { q, checks: () => count };
}

describe('the long poll timer of the SQS emulator', () => {
  it('waits on the next deadline, between 20 ms and a second', () => {
    const { q } = queue();
    expect(pollDelayMs(q, T0)).toBe(POLL_CAP_MS);
    q.delayedMessages.push({ delayUntil: T0 + 300 });
    expect(pollDelayMs(q, T0)).toBe(300);
    q.inflightMessages.set('h', { visibilityDeadline: T0 + 5 });
    expect(pollDelayMs(q, T0)).toBe(POLL_FLOOR_MS);
    q.inflightMessages.set('h', { visibilityDeadline: T0 + 60_000 });
    expect(pollDelayMs(q, T0)).toBe(300);
  });

  it('a long poll with nothing due checks about once a second, not every 20 ms', async () => {
    vi.useFakeTimers({ now: T0 });
    const { q, checks } = queue();
    let done = false;
    void q.waitForMessages(20).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(5_000);
    // fauxqs's own 20 ms loop: 250 checks in these 5 s.
    expect(checks()).toBeLessThanOrEqual(5);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(done).toBe(true);
    // The wait ended with its last waiter: no timer left behind.
    expect(q.pollTimer).toBeUndefined();
    const after = checks();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(checks()).toBe(after);
  });

  it('a message sent wakes the long poll at once; a delayed one when its delay ends', async () => {
    vi.useFakeTimers({ now: T0 });
    const { q } = queue();
    let woke: number | undefined;
    void q.waitForMessages(20).then(() => {
      woke = Date.now() - T0;
    });
    await vi.advanceTimersByTimeAsync(2_500);
    q.enqueue(message('now'));
    await vi.advanceTimersByTimeAsync(0);
    expect(woke).toBe(2_500);

    q.messages.length = 0;
    woke = undefined;
    const since = Date.now();
    q.enqueue(message('later', since + 350));
    void q.waitForMessages(20).then(() => {
      woke = Date.now() - since;
    });
    await vi.advanceTimersByTimeAsync(349);
    expect(woke).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(woke).toBe(350);
    expect(q.messages.map((m) => (m as { messageId: string }).messageId)).toEqual(['later']);
  });
});
