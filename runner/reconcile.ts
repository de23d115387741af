/**
 * Start-up reconcile: every task the journal shows started but never ended was cut short by a
 * crash or a kill. For each, the disk driver undoes what is left in its work folder (overlays
 * committed back into the VM's disks, lock holders stopped), the datastore driver removes stale
 * locks (restic unlock) and partial files, the state machine is told `RunnerRestarted` so its
 * Catch runs Cleanup and MarkFailed (a token nobody waits for any more is fine), and the journal
 * marks the task failed. Runs before polling, so nothing else touches these folders meanwhile.
 *
 * First of all, the tools the dead runner left running (its process groups outlive a SIGKILL)
 * are stopped: a restic still writing would hold its lock against the unlock, and an nbdcopy
 * or qemu-nbd still reading would keep the overlay busy while the disk driver commits it back.
 */
import { rm } from 'node:fs/promises';
import { TaskDatastore, TaskVm } from '#core/contracts/tasks.ts';
import { drillDomainName } from '#core/drill.ts';
import { RunnerRestarted } from './errors.ts';
import type { Journal, JournalRecord } from './journal.ts';
import type { Logger } from './log.ts';
import { type OrphanReport, stopLeftoverGroups } from './orphans.ts';
import type { ProcessRegistry } from './process-registry.ts';
import type { Reporter } from './reporter.ts';
import { reconcileWorkDir } from './tasks/backup-mixed.ts';
import { type Drivers, resolveTarget, type SecretResolver, workDirFor } from './tasks/context.ts';
import { undefineDomain } from './tasks/define-domain.ts';

export interface ReconcileDeps {
  journal: Journal;
  reporter: Reporter;
  drivers: Drivers;
  secrets: SecretResolver;
  stateDir: string;
  log: Logger;
  /** The process groups the previous run recorded; without it no leftover tool is stopped. */
  processes?: ProcessRegistry;
  /** SIGTERM to SIGKILL for leftover tools (default 5 s). */
  orphanGraceMs?: number;
  /** The runner's libvirt connection (a drill's leftover domain is undefined there). */
  libvirtUri?: string;
}

/** What reconcile did for one task. */
export interface Reconciled {
  taskId: string;
  actions: string[];
}

/** Stops leftover tools, then cleans up after each unfinished task. */
export async function reconcileUnfinished(deps: ReconcileDeps): Promise<Reconciled[]> {
  await stopOrphans(deps);
  const out: Reconciled[] = [];
  for (const record of deps.journal.unfinished()) {
    const log = deps.log.child({ taskId: record.taskId, kind: record.kind });
    const actions = await cleanLeftovers(record, deps, log);
    const error = new RunnerRestarted('the runner restarted while the task ran');
    if (record.token) {
      const delivery = await deps.reporter.fail(record.token, error, [], log).catch((e: unknown) => {
        log('warn', 'RunnerRestarted not delivered', { error: (e as Error).name });
        return 'undelivered';
      });
      actions.push(`reported RunnerRestarted (${delivery})`);
    }
    await deps.journal.failed(record.taskId, { name: error.name, message: error.message });
    log('warn', 'reconciled a task cut short by a restart', { actions });
    out.push({ taskId: record.taskId, actions });
  }
  return out;
}

/** Stops the previous run's leftover tools; never throws (cleanup below must still run). */
async function stopOrphans(deps: ReconcileDeps): Promise<OrphanReport[]> {
  if (!deps.processes) return [];
  try {
    return await stopLeftoverGroups(deps.processes, { log: deps.log, graceMs: deps.orphanGraceMs });
  } catch (error) {
    deps.log('error', 'stopping leftover tools failed', { error: (error as Error).message });
    return [];
  }
}

/** Best effort: a failing step is logged and named, the others still run. */
async function cleanLeftovers(record: JournalRecord, deps: ReconcileDeps, log: Logger): Promise<string[]> {
  const actions: string[] = [];
  const workDir = workDirFor(deps.stateDir, record.taskId);
  const vm = TaskVm.safeParse(record.task.vm);
  const vmId = vm.success ? vm.data.id : typeof record.task.vmId === 'number' ? record.task.vmId : undefined;
  try {
    if (record.kind === 'backup') {
      // Throws, keeping the folder, when an overlay with guest writes could not be committed.
      for (const disk of deps.drivers.disks()) {
        actions.push(...(await reconcileWorkDir(disk, workDir, vm.success ? vm.data.domain : undefined)));
      }
    } else {
      // An in-place restore cut short mid-swap gets the VM's own disks back (each driver's
      // reconcile); otherwise, and for the other kinds, only downloads are left there.
      if (record.kind === 'restore') {
        for (const disk of deps.drivers.disks()) actions.push(...(await disk.reconcile(workDir)));
      }
      // A drill cut short leaves its throwaway domain (its name built from the id, as the drill does).
      const drillId = record.task.drillId;
      if (
        record.kind === 'drill' &&
        typeof drillId === 'number' &&
        Number.isSafeInteger(drillId) &&
        drillId > 0
      ) {
        await undefineDomain(drillDomainName(drillId), { uri: deps.libvirtUri });
        actions.push(`removed drill domain ${drillDomainName(drillId)}`);
      }
      await rm(workDir, { recursive: true, force: true });
    }
  } catch (error) {
    log('error', 'disk reconcile failed', { workDir, error: (error as Error).message });
    actions.push(`disk reconcile failed: ${(error as Error).name}`);
  }
  const datastore = TaskDatastore.safeParse(record.task.datastore);
  if (datastore.success && vmId !== undefined) {
    try {
      const target = await resolveTarget(datastore.data, deps.secrets, []);
      await deps.drivers.datastore(datastore.data.driver).reconcile(target, { vmId });
      actions.push(`reconciled datastore ${datastore.data.id}`);
    } catch (error) {
      log('error', 'datastore reconcile failed', { error: (error as Error).name });
      actions.push(`datastore reconcile failed: ${(error as Error).name}`);
    }
  }
  return actions;
}
