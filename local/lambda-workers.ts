/**
 * Local mode's Lambda service: each function runs in worker threads of its own (one execution
 * environment each, local/lambda-worker.ts), with its own process.env. As Lambda does, one
 * environment runs one invocation at a time and concurrent invocations get more environments
 * (up to a cap per function, then they wait). Environments stay warm between invocations, so
 * an invocation costs a message each way, not a thread start; the extra ones a burst started
 * are reclaimed after a minute idle. An invocation past the function's timeout fails with
 * `Sandbox.Timedout` and its environment is discarded, as Lambda does.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { FunctionError, findFunction, type Invoker } from './functions.ts';
import type { InitDoneMessage, InvokeMessage, ResultMessage, WorkerInit } from './lambda-worker.ts';

/** One function as its workers run it. */
export interface FunctionRuntime {
  /** Manifest id. */
  id: string;
  init: WorkerInit;
  timeoutSeconds: number;
  /** The worker's whole process.env. */
  env: Record<string, string>;
}

const WORKER_URL = new URL('./lambda-worker.ts', import.meta.url);

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

/** One execution environment: a worker running at most one invocation. */
class Environment {
  private pending: Pending | undefined;
  private nextId = 0;
  private dead = false;
  /** When it last finished an invocation (for reclaiming extra idle environments). */
  idleSince = Date.now();
  readonly worker: Worker;
  private initOver: () => void = () => {};
  /** Resolves once the worker's init (its module's import) is over, or it is gone. */
  readonly ready = new Promise<void>((resolve) => {
    this.initOver = resolve;
  });

  constructor(
    private readonly fn: FunctionRuntime,
    private readonly onGone: (env: Environment) => void,
  ) {
    this.worker = new Worker(WORKER_URL, {
      env: fn.env,
      workerData: fn.init,
      // The function's memory size bounds its heap (Lambda's bounds the whole environment).
      resourceLimits: { maxOldGenerationSizeMb: Number(fn.init.memoryLimitInMB) },
    });
    this.worker.on('message', (msg: ResultMessage | InitDoneMessage) => {
      if ('initDone' in msg) this.initOver();
      else this.answer(msg);
    });
    this.worker.on('error', (err: Error & { code?: string }) =>
      this.fail(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new FunctionError('Runtime.OutOfMemory', 'Runtime exited with error: out of memory')
          : new FunctionError('Runtime.ExitError', `Runtime exited with error: ${err.message}`),
      ),
    );
    this.worker.on('exit', (code) =>
      this.fail(new FunctionError('Runtime.ExitError', `Runtime exited with error: exit status ${code}`)),
    );
  }

  get alive(): boolean {
    return !this.dead;
  }

  async invoke(event: unknown): Promise<unknown> {
    // The timeout counts from the end of init (Lambda bounds init on its own).
    await this.ready;
    if (this.dead)
      throw new FunctionError(
        'Runtime.ExitError',
        'Runtime exited with error: the environment ended in its init',
      );
    const timeoutMs = this.fn.timeoutSeconds * 1000;
    const msg: InvokeMessage = {
      id: ++this.nextId,
      event: JSON.stringify(event === undefined ? {} : event),
      requestId: randomUUID(),
      deadline: Date.now() + timeoutMs,
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          new FunctionError(
            'Sandbox.Timedout',
            `RequestId: ${msg.requestId} Error: Task timed out after ${this.fn.timeoutSeconds.toFixed(2)} seconds`,
          ),
        );
      }, timeoutMs);
      this.pending = { resolve, reject, timer };
      this.worker.postMessage(msg);
    });
  }

  private answer(msg: ResultMessage): void {
    const pending = this.pending;
    if (!pending || msg.id !== this.nextId) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    if (msg.ok) {
      pending.resolve(JSON.parse(msg.result));
      return;
    }
    // A failed init leaves no usable environment: the next invocation starts a fresh one.
    if (msg.init) void this.discard();
    pending.reject(new FunctionError(msg.errorType, msg.errorMessage));
  }

  /** The environment is lost (crash, timeout): fail its invocation and discard it. */
  private fail(err: FunctionError): void {
    const pending = this.pending;
    this.pending = undefined;
    void this.discard();
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(err);
    }
  }

  discard(): Promise<unknown> {
    if (this.dead) return Promise.resolve();
    this.dead = true;
    this.initOver();
    this.onGone(this);
    return this.worker.terminate();
  }
}

/** The environments of one function. */
class FunctionPool {
  private readonly idle: Environment[] = [];
  private readonly waiting: ((env: Environment) => void)[] = [];
  private count = 0;
  private stopped = false;
  private readonly all = new Set<Environment>();
  private reaper: NodeJS.Timeout | undefined;

  constructor(
    private readonly fn: FunctionRuntime,
    private readonly max: number,
    private readonly idleMs: number,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Starts the first environment ahead of the first invocation (a warm start); resolves once it is initialized. */
  prewarm(): Promise<void> {
    if (this.count > 0 || this.stopped) return Promise.resolve();
    const env = this.create();
    this.idle.push(env);
    return env.ready;
  }

  async invoke(event: unknown): Promise<unknown> {
    const env = await this.acquire();
    try {
      return await env.invoke(event);
    } finally {
      this.release(env);
    }
  }

  private create(): Environment {
    this.count++;
    const env = new Environment(this.fn, (gone) => {
      this.count--;
      this.all.delete(gone);
      const at = this.idle.indexOf(gone);
      if (at >= 0) this.idle.splice(at, 1);
      // A waiter may now get a new environment in place of the lost one.
      const next = this.stopped ? undefined : this.waiting.shift();
      if (next) next(this.create());
    });
    this.all.add(env);
    return env;
  }

  private acquire(): Promise<Environment> {
    // A late caller (a timer of the interpreter or the scheduler) after stop must not start a
    // worker nobody will terminate: it would keep the process alive.
    if (this.stopped) {
      return Promise.reject(
        new FunctionError('ServiceException', `function ${this.fn.id}: the local Lambda service has stopped`),
      );
    }
    const env = this.idle.pop();
    if (env) return Promise.resolve(env);
    if (this.count < this.max) return Promise.resolve(this.create());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(env: Environment): void {
    if (!env.alive) return;
    const next = this.waiting.shift();
    if (next) {
      next(env);
      return;
    }
    env.idleSince = Date.now();
    this.idle.push(env);
    this.scheduleReap();
  }

  /**
   * Environments a burst started are reclaimed once idle for `idleMs`, as Lambda reclaims idle
   * ones; the most recently used one stays warm, so a steady trickle never pays a cold start.
   */
  private scheduleReap(): void {
    if (this.reaper || this.idle.length < 2 || this.stopped) return;
    this.reaper = setTimeout(() => {
      this.reaper = undefined;
      const now = Date.now();
      // idle is a stack: the least recently used environments come first.
      while (this.idle.length > 1 && (this.idle[0]?.idleSince ?? now) <= now - this.idleMs) {
        void this.idle[0]?.discard();
      }
      this.scheduleReap();
    }, this.idleMs);
    this.reaper.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reaper);
    this.idle.length = 0;
    await Promise.all([...this.all].map((e) => e.discard()));
  }
}

/** Every function's environments, behind one {@link Invoker}. */
export class LambdaWorkers {
  private readonly pools = new Map<string, FunctionPool>();

  /**
   * `maxPerFunction`: environments of one function at most (further invocations wait);
   * `idleMs`: how long an environment beyond the first stays idle before it is reclaimed.
   */
  constructor(
    functions: readonly FunctionRuntime[],
    opts: { maxPerFunction?: number; idleMs?: number } = {},
  ) {
    for (const fn of functions) {
      this.pools.set(fn.id, new FunctionPool(fn, opts.maxPerFunction ?? 4, opts.idleMs ?? 60_000));
    }
  }

  /** How many environments each function has now (by manifest id). */
  environments(): Record<string, number> {
    return Object.fromEntries([...this.pools].map(([id, pool]) => [id, pool.size]));
  }

  /**
   * Start one environment of each function now rather than at its first invocation, one after
   * the other (each once the previous one's init is over, so they do not all compete for the
   * CPU at once); resolves when all are initialized.
   */
  async prewarm(ids: readonly string[]): Promise<void> {
    for (const id of ids) await this.pools.get(id)?.prewarm();
  }

  /**
   * Invoke a function by manifest id, name or ARN. The event and the result go through JSON, as
   * in Lambda. Throws {@link FunctionError} when the handler throws (its name as errorType), times
   * out or crashes, or when the function is unknown (`ResourceNotFoundException`).
   */
  readonly invoke: Invoker = async (id, event) => {
    const spec = findFunction(id);
    const pool = spec && this.pools.get(spec.id);
    if (!pool) throw new FunctionError('ResourceNotFoundException', `Function not found: ${id}`);
    return pool.invoke(event);
  };

  async stop(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.stop()));
  }
}
