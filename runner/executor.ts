/**
 * Runs validated tasks: asks the journal whether a delivery runs, is answered again or ignored;
 * journals the start before the queue message is deleted; heartbeats while the task works
 * (aborting it when the execution is gone); journals and sends the outcome; removes the task's
 * work folder. Keeps the running tasks so cleanup can abort one and shutdown can wait for all.
 */
import { rm, rmdir } from 'node:fs/promises';
import type { Task } from '#core/contracts/tasks.ts';
import { DEFAULT_RESTORE_ROOTS } from './config.ts';
import { TaskAborted } from './errors.ts';
import type { Journal } from './journal.ts';
import { type Logger, maskingLogger } from './log.ts';
import { type ProgressSink, taskProgress } from './progress.ts';
import { encodeOutput, type Reporter, shapeFailure } from './reporter.ts';
import {
  type Drivers,
  resolveTarget,
  type SecretResolver,
  type TaskContext,
  workDirFor,
} from './tasks/context.ts';
import { HEAVY_KINDS, runTask } from './tasks/index.ts';

export interface ExecutorDeps {
  journal: Journal;
  reporter: Reporter;
  drivers: Drivers;
  secrets: SecretResolver;
  progress: ProgressSink;
  stateDir: string;
  /** The host's restore roots (default {@link DEFAULT_RESTORE_ROOTS}). */
  restoreRoots?: readonly string[];
  /** The Ceph pools this host lets restores write into (default none). */
  restorePools?: readonly string[];
  /** The runner's libvirt connection (`LIFEBOAT_LIBVIRT_URI`); absent: `qemu:///system`. */
  libvirtUri?: string;
  /** This runner's host: a task naming another host is refused (absent: not checked). */
  hostId?: number;
  log: Logger;
  /** Runs a task (the handlers of `tasks/`); replaced in unit tests. */
  run?: (task: Task, ctx: TaskContext) => Promise<unknown>;
}

interface Running {
  kind: Task['kind'];
  abort: AbortController;
  done: Promise<void>;
}

/** What became of a delivery. */
export type Accepted = 'started' | 'answered' | 'ignored';

export class Executor {
  private readonly running = new Map<string, Running>();

  constructor(private readonly deps: ExecutorDeps) {}

  /**
   * Takes a delivered task. Resolves once the decision is durable (journalled start, or the
   * repeated answer sent), so the caller may then delete the queue message; the task itself
   * runs on in the background.
   */
  async accept(task: Task): Promise<Accepted> {
    const log = this.deps.log.child({ taskId: task.taskId, kind: task.kind });
    const { hostId } = this.deps;
    if (hostId !== undefined && task.hostId !== undefined && task.hostId !== hostId) {
      // Another host's task (a misrouted or copied message): neither run, journalled nor
      // answered, so its execution still waits for the host it names.
      log('warn', 'task refused: it is for another host', { forHost: task.hostId });
      return 'ignored';
    }
    const admission = this.deps.journal.admit(task.taskId);
    if (admission.action === 'ignore') {
      log('info', `task delivered again, ignored: ${admission.reason}`);
      return 'ignored';
    }
    if (admission.action === 'answer') {
      // Same outcome, new token: the state machine may have handed the task out again.
      const { outcome } = admission;
      log('info', 'task delivered again, answered with its recorded outcome', { ok: outcome.ok });
      if (outcome.ok) await this.deps.reporter.succeed(task.token, outcome.result, log);
      else
        await this.deps.reporter.fail(
          task.token,
          Object.assign(new Error(outcome.error.message), { name: outcome.error.name }),
          [],
          log,
        );
      return 'answered';
    }
    // Only a task some execution waits for is run or journalled: a forged or replayed message
    // (no live token) does nothing, and cannot claim a real task's id in the journal.
    if (!(await this.deps.reporter.confirmWaiting(task.token))) {
      log('warn', 'task ignored: no execution waits for its token (forged, or its execution ended)');
      return 'ignored';
    }
    await this.deps.journal.start(task);
    const abort = new AbortController();
    const done = this.execute(task, abort, log).finally(() => this.running.delete(task.taskId));
    this.running.set(task.taskId, { kind: task.kind, abort, done });
    return 'started';
  }

  /** Running backups, restores and other disk-heavy tasks (the concurrency limit counts these). */
  heavyCount(): number {
    return [...this.running.values()].filter((r) => HEAVY_KINDS.has(r.kind)).length;
  }

  /** Number of tasks running. */
  get size(): number {
    return this.running.size;
  }

  /** Aborts `taskId` if it runs here and waits for it to end; false when it does not run. */
  async abortRunning(taskId: string, reason = 'its execution is cleaning up'): Promise<boolean> {
    const entry = this.running.get(taskId);
    if (!entry) return false;
    entry.abort.abort(new TaskAborted(`task ${taskId} aborted: ${reason}`));
    await entry.done;
    return true;
  }

  /** Waits until every running task ended, or `timeoutMs` passed; answers whether all ended. */
  async drain(timeoutMs: number): Promise<boolean> {
    const all = Promise.all([...this.running.values()].map((r) => r.done)).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Aborts every running task (shutdown past its grace period) and waits for them. */
  async abortAll(reason: string): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.abortRunning(id, reason)));
  }

  private async execute(task: Task, abort: AbortController, taskLog: Logger): Promise<void> {
    const { journal, reporter, stateDir } = this.deps;
    const secrets: string[] = [];
    // Everything this task logs, its handlers' lines included, has its secrets masked.
    const log = maskingLogger(taskLog, secrets);
    const workDir = workDirFor(stateDir, task.taskId);
    const progress = taskProgress(task.taskId, this.deps.progress, log);
    const stopHeartbeat = reporter.startHeartbeat(task.token, task.heartbeatSeconds, (reason) => {
      log('warn', 'aborting task', { reason });
      abort.abort(new TaskAborted(`task ${task.taskId} aborted: ${reason}`));
    });
    const ctx: TaskContext = {
      signal: abort.signal,
      workDir,
      stateDir,
      restoreRoots: this.deps.restoreRoots ?? DEFAULT_RESTORE_ROOTS,
      restorePools: this.deps.restorePools ?? [],
      progress,
      drivers: this.deps.drivers,
      libvirtUri: this.deps.libvirtUri,
      target: (datastore) => resolveTarget(datastore, this.deps.secrets, secrets),
      workDirOf: (taskId) => workDirFor(stateDir, taskId),
      abortRunning: (taskId) => this.abortRunning(taskId),
      log,
    };
    const started = Date.now();
    log('info', 'task started');
    const journalError = (e: unknown) => log('error', 'journal write failed', { error: String(e) });
    const undelivered = (e: unknown) =>
      log('error', 'task outcome not delivered', { error: (e as Error).name });
    try {
      let result: unknown;
      try {
        result = await (this.deps.run ?? runTask)(task, ctx);
        // A handler that finished despite an abort still reports the abort: nobody waits otherwise.
        if (abort.signal.aborted) throw abort.signal.reason;
        encodeOutput(result);
      } catch (caught) {
        // Once aborted, whatever the handler threw (Cancelled, a tool killed by SIGTERM, a
        // driver's own error) follows from the abort: its reason says why.
        const error = abort.signal.aborted ? abort.signal.reason : caught;
        const shaped = shapeFailure(error, secrets);
        log('warn', 'task failed', { error: shaped.error, cause: shaped.cause, ms: Date.now() - started });
        await journal.failed(task.taskId, { name: shaped.error, message: shaped.cause }).catch(journalError);
        await reporter.fail(task.token, error, secrets, log).catch(undelivered);
        return;
      }
      await journal.done(task.taskId, result).catch(journalError);
      await reporter.succeed(task.token, result, log).catch(undelivered);
      log('info', 'task succeeded', { ms: Date.now() - started });
    } finally {
      stopHeartbeat();
      await progress.flush();
      await removeWorkDir(task.kind, workDir);
    }
  }
}

/**
 * A backup's work folder may still hold an overlay with guest writes the disk driver could not
 * commit back: only an empty one is removed (the driver empties it when all went well). Other
 * kinds hold only downloads and are removed whole.
 */
async function removeWorkDir(kind: Task['kind'], workDir: string): Promise<void> {
  if (kind === 'backup') await rmdir(workDir).catch(() => {});
  else if (kind !== 'cleanup') await rm(workDir, { recursive: true, force: true });
}
