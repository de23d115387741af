/**
 * Inventory reports, one at a time: a burst of libvirt events (a domain starting sends
 * "resumed" and "started" within milliseconds) becomes one report once the burst has been quiet
 * for a moment, and reports never overlap, so an older reading can never land after a newer one
 * (the minute's report and an event's report go through the same queue).
 */

/** Timings of {@link CoalescedReports}. */
export interface CoalesceTiming {
  /** A report starts once no request came for this long (ms). */
  quietMs: number;
  /** ... or at the latest this long after the first request of a burst (ms). */
  maxDelayMs: number;
}

export const DEFAULT_COALESCE: CoalesceTiming = { quietMs: 200, maxDelayMs: 1000 };

export class CoalescedReports {
  private timer: NodeJS.Timeout | undefined;
  private burstStart: number | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private stopped = false;

  /** `report` must not reject (it logs its own failures). */
  constructor(
    private readonly report: () => Promise<void>,
    private readonly timing: CoalesceTiming = DEFAULT_COALESCE,
  ) {}

  /** Asks for a report soon: after the burst this request is part of. */
  request(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.burstStart ??= now;
    clearTimeout(this.timer);
    const latest = this.burstStart + this.timing.maxDelayMs - now;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.min(this.timing.quietMs, latest)));
  }

  /**
   * Reports now, or right after the report in flight (whose reading may predate the change
   * the caller knows of). Several calls during one report share the one that follows it.
   */
  now(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (!this.running) return this.start();
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.stopped ? undefined : this.start();
    });
    return this.queued;
  }

  /** No more reports; resolves once the one in flight (and one queued) ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.queued;
    await this.running;
  }

  private fire(): void {
    this.timer = undefined;
    this.burstStart = undefined;
    void this.now();
  }

  private start(): Promise<void> {
    const running = this.report().finally(() => {
      if (this.running === running) this.running = undefined;
    });
    this.running = running;
    return running;
  }
}
