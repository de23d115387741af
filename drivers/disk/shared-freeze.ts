/**
 * One freeze across several disk drivers: a VM with file and rbd disks is backed up by both
 * drivers, each preparing its own disks, and their snapshot steps must see the guest at one and
 * the same instant. The runner runs every driver's `prepareBackup` at once, each inside
 * {@link SharedFreeze.join}; each driver's own `freeze()` call (freeze.ts) then waits here until
 * every driver still preparing has reached its snapshot step, the guest is frozen once, the
 * snapshots are taken, and the guest is thawed when the last driver is done with its snapshot.
 *
 * The drivers find the shared freeze through AsyncLocalStorage, so their interface does not
 * change: a driver calling `freeze()` outside of `join` freezes the guest on its own, as before.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FreezeMode } from './driver.ts';
import type { ToolOptions } from './tools.ts';

/** How the guest is actually frozen (freeze.ts's own function, without the sharing). */
export type Freezer = (
  domain: string,
  mode: FreezeMode,
  state: string,
  tool: ToolOptions,
) => Promise<() => Promise<void>>;

/** Thrown to a driver waiting to snapshot when another driver of the same backup failed. */
export class SharedFreezeAborted extends Error {
  override name = 'SharedFreezeAborted';
}

const current = new AsyncLocalStorage<{ gate: SharedFreeze; id: number }>();

/** The shared freeze of the driver running in this async context, if any. */
export function sharedFreeze(): { gate: SharedFreeze; id: number } | undefined {
  return current.getStore();
}

/**
 * One backup's freeze, shared by `participants` drivers. With FS_FREEZE=NONE and more than one
 * driver, the guest is paused (SUSPEND) for the snapshot steps alone: without it the drivers'
 * snapshots would be taken at different instants, and the backup would be no consistent point.
 */
export class SharedFreeze {
  private readonly pending = new Set<number>();
  private readonly waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private readonly holding = new Set<number>();
  private args: Parameters<Freezer> | undefined;
  private thaw: (() => Promise<void>) | undefined;
  private phase: 'gathering' | 'frozen' | 'done' | 'aborted' = 'gathering';
  private thawed: Promise<void> | undefined;

  constructor(
    participants: number,
    private readonly freezer: Freezer,
  ) {
    for (let id = 0; id < participants; id++) this.pending.add(id);
  }

  /** Runs participant `id`'s preparation with this freeze shared; it ends its part when done. */
  async join<T>(id: number, fn: () => Promise<T>): Promise<T> {
    try {
      return await current.run({ gate: this, id }, fn);
    } catch (error) {
      // A driver that failed before its snapshot: the others must not snapshot alone.
      if (this.phase === 'gathering') this.abort(error as Error);
      throw error;
    } finally {
      this.pending.delete(id);
      this.check();
    }
  }

  /**
   * Called by `freeze()` in participant `id`: resolves once the guest is frozen for everyone;
   * the undo answered ends this participant's hold (the guest is thawed after the last one).
   */
  async enter(id: number, ...args: Parameters<Freezer>): Promise<() => Promise<void>> {
    if (this.phase !== 'gathering') {
      // A second snapshot step of the same driver: never seen; it freezes on its own.
      return this.freezer(...args);
    }
    this.args ??= args;
    const arrived = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.check();
    await arrived;
    return async () => {
      this.holding.delete(id);
      if (this.holding.size === 0) await this.release();
    };
  }

  private abort(error: Error): void {
    this.phase = 'aborted';
    for (const { reject } of this.waiting.values()) {
      reject(new SharedFreezeAborted(`another disk driver of this backup failed: ${error.message}`));
    }
    this.waiting.clear();
  }

  /** Freezes once every driver still preparing waits for it. */
  private check(): void {
    if (this.phase !== 'gathering' || this.waiting.size === 0) return;
    for (const id of this.pending) if (!this.waiting.has(id)) return;
    this.phase = 'frozen';
    const [domain, mode, state, tool] = this.args as Parameters<Freezer>;
    const waiting = [...this.waiting.values()];
    for (const held of this.waiting.keys()) this.holding.add(held);
    this.waiting.clear();
    const shared: FreezeMode = mode === 'NONE' && this.pending.size > 1 ? 'SUSPEND' : mode;
    this.freezer(domain, shared, state, tool).then(
      (thaw) => {
        this.thaw = thaw;
        for (const w of waiting) w.resolve();
      },
      (error: Error) => {
        this.phase = 'aborted';
        for (const w of waiting) w.reject(error);
      },
    );
  }

  private release(): Promise<void> {
    this.phase = 'done';
    this.thawed ??= (this.thaw ?? (async () => {}))();
    return this.thawed;
  }
}
