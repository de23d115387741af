/**
 * `cleanup`: best-effort undo of a failed backup or restore on this host. The failed task is
 * aborted if it still runs here, then the disk driver reconciles its work folder (overlays
 * committed back, lock holders stopped; an interrupted in-place restore's safety copies put
 * back) and the datastore driver removes stale locks and
 * partial files of the VM. It succeeds when nothing is left, so the state machine can go on to
 * MarkFailed; a step that fails is named in the result and logged, never thrown, except when
 * the disk driver had to keep an overlay it could not commit (the VM would lose writes).
 */
import { rm } from 'node:fs/promises';
import type { CleanupTask } from '#core/contracts/tasks.ts';
import { reconcileWorkDir } from './backup-mixed.ts';
import type { TaskContext } from './context.ts';

export async function runCleanup(task: CleanupTask, ctx: TaskContext): Promise<{ cleaned: string[] }> {
  const cleaned: string[] = [];
  if (await ctx.abortRunning(task.failedTaskId)) cleaned.push(`aborted ${task.failedTaskId}`);
  const workDir = ctx.workDirOf(task.failedTaskId);
  // Every disk driver undoes its own part. Throws when an overlay had to be kept (committing it
  // failed): then the VM needs a human.
  for (const disk of ctx.drivers.disks()) {
    cleaned.push(...(await reconcileWorkDir(disk, workDir, task.vm?.domain, { signal: ctx.signal })));
  }
  await rm(workDir, { recursive: true, force: true });
  if (task.datastore && task.vm) {
    try {
      const target = await ctx.target(task.datastore);
      await ctx.drivers
        .datastore(task.datastore.driver)
        .reconcile(target, { vmId: task.vm.id }, { signal: ctx.signal });
      cleaned.push(`reconciled datastore ${task.datastore.id} for VM ${task.vm.id}`);
    } catch (error) {
      ctx.log('warn', 'datastore reconcile failed', { error: (error as Error).message });
      cleaned.push(`datastore ${task.datastore.id} reconcile failed: ${(error as Error).name}`);
    }
  }
  return { cleaned };
}
