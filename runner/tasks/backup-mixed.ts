/**
 * A backup of a VM whose disks belong to several disk drivers (file disks and rbd images): each
 * driver prepares its own disks, all at once, with one freeze of the guest around all their
 * snapshot steps (`drivers/disk/shared-freeze.ts`), so the backup is one consistent point. The
 * prepared parts are handed to the datastore as one backup and released together.
 */

import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupResult, BackupTask } from '#core/contracts/tasks.ts';
import type { DiskDriver, PreparedBackup } from '#drivers/disk/driver.ts';
import { freezeAlone } from '#drivers/disk/freeze.ts';
import { SharedFreeze, SharedFreezeAborted } from '#drivers/disk/shared-freeze.ts';
import { makeQemuReachableDir } from '#drivers/disk/work-dir.ts';
import type { TaskContext } from './context.ts';

/** What `prepare` of backup.ts answers for one driver. */
export interface Prepared {
  prepared: PreparedBackup;
  increment: BackupResult['increment'];
  chainReset: string | null;
}

/**
 * Prepares one driver's disks (backup.ts's `prepare`, with its own chain-reset fallback) in
 * `workDir`.
 */
export type PrepareOne = (task: BackupTask, disk: DiskDriver, workDir: string) => Promise<Prepared>;

/**
 * The work folder of driver `name` in a backup of several drivers: each its own, because a
 * driver's reconcile and release clean up the folder it is given.
 */
export function partWorkDir(workDir: string, name: string): string {
  return join(workDir, `disk-${name}`);
}

/**
 * What a crash left in a backup's work folder, undone by `disk`: the folder itself (one driver's
 * backup) and its own part of a backup of several drivers, when there is one.
 */
export async function reconcileWorkDir(
  disk: DiskDriver,
  workDir: string,
  domain?: string,
  options?: { signal?: AbortSignal },
): Promise<string[]> {
  const actions = await disk.reconcile(workDir, domain, options);
  const part = partWorkDir(workDir, disk.name);
  const exists = await access(part).then(
    () => true,
    () => false,
  );
  if (exists) actions.push(...(await disk.reconcile(part, domain, options)));
  return actions;
}

/**
 * The task's disks by the driver that handles each, as this runner resolves the names (a disk
 * that names none gets the default, file disks): grouping by the names as written would make
 * one driver two participants, preparing at once in one part folder.
 */
export function disksByDriver(
  task: BackupTask,
  ctx: Pick<TaskContext, 'drivers'>,
): Map<DiskDriver, BackupTask['disks']> {
  const groups = new Map<DiskDriver, BackupTask['disks']>();
  for (const disk of task.disks) {
    const driver = ctx.drivers.disk(disk.driver);
    groups.set(driver, [...(groups.get(driver) ?? []), disk]);
  }
  return groups;
}

/**
 * Prepares every disk of the task with the driver it names. One driver: as it always was. Several:
 * all at once under one shared freeze. When one driver's chain could not be followed (it started
 * a new chain) and another's could, the parts are undone and all start a new chain together:
 * a point is an increment for all its disks or for none.
 */
export async function prepareDisks(
  task: BackupTask,
  ctx: TaskContext,
  prepareOne: PrepareOne,
): Promise<Prepared> {
  const groups = disksByDriver(task, ctx);
  const [only] = groups.keys();
  if (groups.size === 1 && only) return prepareOne(task, only, ctx.workDir);
  // QEMU must reach the file drivers' overlays and sockets in their part.
  await makeQemuReachableDir(ctx.workDir);
  const parts = await prepareTogether(task, groups, ctx, prepareOne);
  const reset = parts.find((p) => p.chainReset !== null);
  const inc = task.increment;
  if (!reset || !inc || parts.every((p) => p.chainReset !== null)) return combine(parts);
  await releaseAll(parts, { failed: true });
  ctx.log('warn', 'one disk driver starts a new chain: every disk of the VM starts it with a FULL', {
    vmId: task.vm.id,
    reason: reset.chainReset,
  });
  const again = await prepareTogether(
    { ...task, increment: { ...inc, parentCheckpoint: null } },
    groups,
    ctx,
    prepareOne,
  );
  return {
    ...combine(again),
    increment: { id: 0, parent: null, checkpoint: inc.checkpoint },
    chainReset: reset.chainReset,
  };
}

async function prepareTogether(
  task: BackupTask,
  groups: ReadonlyMap<DiskDriver, BackupTask['disks']>,
  ctx: TaskContext,
  prepareOne: PrepareOne,
): Promise<Prepared[]> {
  const gate = new SharedFreeze(groups.size, freezeAlone);
  const settled = await Promise.allSettled(
    [...groups].map(([disk, disks], i) =>
      gate.join(i, () => prepareOne({ ...task, disks }, disk, partWorkDir(ctx.workDir, disk.name))),
    ),
  );
  const parts = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  if (failures.length === 0) return parts;
  await releaseAll(parts, { failed: true }).catch((error: unknown) => {
    ctx.log('error', 'release after a failed preparation failed', { error: (error as Error).message });
  });
  // The driver that failed first, not the others it stopped at the shared freeze.
  throw failures.find((e) => !(e instanceof SharedFreezeAborted)) ?? failures[0];
}

function combine(parts: readonly Prepared[]): Prepared {
  const first = parts[0] as Prepared;
  const prepared: PreparedBackup = {
    files: parts.flatMap((p) => p.prepared.files).sort((a, b) => a.diskId - b.diskId),
    template: first.prepared.template,
    state: first.prepared.state,
    release: (options) => releaseAll(parts, options),
  };
  return { prepared, increment: first.increment, chainReset: first.chainReset };
}

/** Releases every part, even when one fails; then throws the first failure. */
async function releaseAll(parts: readonly Prepared[], options?: { failed?: boolean }): Promise<void> {
  let failure: unknown;
  for (const part of parts) {
    await part.prepared.release(options).catch((error: unknown) => {
      failure ??= error;
    });
  }
  if (failure !== undefined) throw failure;
}
