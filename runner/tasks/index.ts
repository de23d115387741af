/** The task handlers by kind: one function from a validated task to its result. */
import type { Task, TaskKind } from '#core/contracts/tasks.ts';
import { runBackup } from './backup.ts';
import { runCleanup } from './cleanup.ts';
import type { TaskContext } from './context.ts';
import { runCatalog, runDownload, runMonitor, runRm, runStat, runVerify } from './datastore-ops.ts';
import { runDrill } from './drill.ts';
import { runFlatten } from './flatten.ts';
import { runRestore } from './restore.ts';

/** Runs `task` with the handler of its kind. */
export function runTask(task: Task, ctx: TaskContext): Promise<unknown> {
  switch (task.kind) {
    case 'backup':
      return runBackup(task, ctx);
    case 'restore':
      return runRestore(task, ctx);
    case 'cleanup':
      return runCleanup(task, ctx);
    case 'rm':
      return runRm(task, ctx);
    case 'monitor':
      return runMonitor(task, ctx);
    case 'stat':
      return runStat(task, ctx);
    case 'download':
      return runDownload(task, ctx);
    case 'verify':
      return runVerify(task, ctx);
    case 'flatten':
      return runFlatten(task, ctx);
    case 'catalog':
      return runCatalog(task, ctx);
    case 'drill':
      return runDrill(task, ctx);
  }
}

/** Kinds that move disks and count against the runner's concurrency limit. */
export const HEAVY_KINDS: ReadonlySet<TaskKind> = new Set([
  'backup',
  'restore',
  'download',
  'verify',
  'flatten',
  'drill',
]);
