/**
 * How often a running operation is looked at, `elapsedMs` into it: every second for the first
 * ten, then a tenth of the time so far, at most every 3 s. The CLI's `--wait` polls on it and the
 * runner writes a task's byte progress on it: a poll seldom finds the progress older than its
 * own interval, and a long backup costs the progress table a write every 3 s, not every second
 * (an hour: 1,200 writes rather than 3,600, each a DynamoDB request the control plane serves).
 */
export function followIntervalMs(elapsedMs: number): number {
  return Math.round(Math.min(3000, Math.max(1000, elapsedMs / 10)));
}
