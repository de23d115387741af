/**
 * KEEP_LAST on an increment chain: when a chain holds more points than KEEP_LAST, CommitBackup
 * sets the VM's ACTIVE_FLATTEN, and {@link queueFlatten} locks the chain's image and queues a
 * `flatten` (Maintenance machine). Its steps (functions/tasks/flatten.ts) send the points to
 * merge and record the new base; whatever way it ends, endOperation (./end.ts) puts the image
 * back to READY and clears ACTIVE_FLATTEN. While it runs, backups of the VM and deletes of the
 * image are refused.
 */
import { type EffectiveConfig, effectiveConfig, underDefaults } from '#core/backup-config.ts';
import type { Datastore, Execution, Host, Image, Vm } from '#core/model.ts';
import { type FlattenPlan, flattenPlan } from '#core/retention.ts';
import { log } from '#platform/log.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { enqueueMaintenance } from './maintenance.ts';

/** Who flatten executions are requested by. */
export const FLATTEN_REQUESTER = { name: 'lifeboat:retention' };

/**
 * The VM's BACKUP_CONFIG as retention reads it: for an image a backup job made, the job's keys
 * (kept in the image's config) apply where the VM sets none. Null for a corrupt value, which
 * keeps everything rather than fail a commit.
 */
export function retentionConfigOf(
  vm: Vm,
  image?: Pick<Image, 'jobId' | 'backupConfig'>,
): EffectiveConfig | null {
  const own = vm.backups.BACKUP_CONFIG;
  const record =
    image?.jobId !== undefined && image.backupConfig ? underDefaults(own, image.backupConfig) : own;
  try {
    return effectiveConfig(record);
  } catch {
    return null;
  }
}

/** KEEP_LAST of the VM (null: keep all), as {@link retentionConfigOf} reads it. */
export function keepLastOf(vm: Vm, image?: Pick<Image, 'jobId' | 'backupConfig'>): number | null {
  return retentionConfigOf(vm, image)?.keepLast ?? null;
}

/** The flatten KEEP_LAST asks of an increment chain, or null (none, or a malformed chain: logged). */
export function planFlatten(image: Image, vm: Vm): FlattenPlan | null {
  if (image.mode !== 'INCREMENT') return null;
  try {
    return flattenPlan(image.increments, keepLastOf(vm, image));
  } catch (err) {
    log('error', 'KEEP_LAST: the increment chain cannot be flattened', {
      imageId: image.id,
      message: (err as Error).message,
    });
    return null;
  }
}

/**
 * Queues the flatten of a READY chain image and locks the image for it (conditional: a second
 * caller, or a retry, finds it locked and queues nothing). Answers the execution, or undefined.
 */
export async function queueFlatten(
  image: Image,
  datastore: Datastore,
  host: Host,
): Promise<Execution | undefined> {
  const execution = await enqueueMaintenance(FLATTEN_REQUESTER, { kind: 'flatten', host, datastore, image });
  try {
    await images.update(
      image.id,
      { state: 'LOCKED', executionId: execution.id },
      { condition: { expression: '#s = :ready', names: { '#s': 'state' }, values: { ':ready': 'READY' } } },
    );
    return execution;
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    log('warn', 'KEEP_LAST: chain image not READY, its flatten will find nothing to do', {
      imageId: image.id,
      executionId: execution.id,
    });
    return execution;
  }
}
