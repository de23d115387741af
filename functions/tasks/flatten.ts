/**
 * KEEP_LAST on an increment chain: when a chain holds more points than KEEP_LAST, CommitBackup
 * sets the VM's ACTIVE_FLATTEN, locks the chain's image and queues a `flatten` (Maintenance
 * machine). Its Admit sends the points to merge; its Commit records the new base, clears
 * ACTIVE_FLATTEN and queues the removal of the merged backups; MarkFailed puts everything back.
 * While it runs, backups of the VM and deletes of the image are refused.
 */
import { effectiveConfig, underDefaults } from '#core/backup-config.ts';
import { FlattenResult, FlattenTask } from '#core/contracts/tasks.ts';
import { Conflict } from '#core/errors.ts';
import { flattenedImage, flattenPoints } from '#core/flatten.ts';
import type { Datastore, Execution, Host, Image, Vm } from '#core/model.ts';
import { type FlattenPlan, flattenPlan } from '#core/retention.ts';
import { log } from '#platform/log.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { vms } from '../repo/vms.ts';
import { taskDatastore, taskHeader } from './common.ts';
import { enqueueMaintenance, type MaintenanceInput } from './maintenance.ts';

/** Who flatten executions are requested by. */
export const FLATTEN_REQUESTER = { name: 'lifeboat:retention' };

/**
 * KEEP_LAST of the VM (null: keep all); for an image a backup job made, the job's KEEP_LAST
 * (kept in the image's config) applies where the VM sets none. A corrupt value keeps everything
 * rather than fail a commit.
 */
export function keepLastOf(vm: Vm, image?: Pick<Image, 'jobId' | 'backupConfig'>): number | null {
  const own = vm.backups.BACKUP_CONFIG;
  const record =
    image?.jobId !== undefined && image.backupConfig ? underDefaults(own, image.backupConfig) : own;
  try {
    return effectiveConfig(record).keepLast;
  } catch {
    return null;
  }
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

/** Whether the VM's chain is being flattened (its ACTIVE_FLATTEN). */
export function flattening(vm: Vm): boolean {
  return vm.backups.BACKUP_CONFIG.ACTIVE_FLATTEN === 'YES';
}

/** 409 message of a backup asked for while the VM's chain is being flattened. */
export function flatteningMessage(vm: Pick<Vm, 'id'>): string {
  return `VM ${vm.id}: its increment chain is being flattened for KEEP_LAST (ACTIVE_FLATTEN=YES); back it up when that ends`;
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

const FlattenTaskFields = FlattenTask.omit({ taskId: true, token: true });

/** Admit of a flatten: the image locked by this execution, the plan as of now, the host task. */
export async function admitFlatten(
  input: MaintenanceInput,
  datastore: Datastore,
  host: Host,
  heartbeatSeconds: number,
) {
  if (input.imageId === null) throw new Conflict('a flatten needs an image');
  const image = await images.get(input.imageId);
  if (image.state !== 'LOCKED' || image.executionId !== input.executionId) {
    throw new Conflict(`Image ${image.id} is ${image.state}, not locked for flatten ${input.executionId}`);
  }
  const plan = planFlatten(image, await vms.get(image.vmId));
  if (!plan)
    throw new Conflict(`Image ${image.id}: its chain has no more points than KEEP_LAST, nothing to flatten`);
  return {
    image,
    task: FlattenTaskFields.parse({
      ...taskHeader('flatten', heartbeatSeconds, host.id),
      vmId: image.vmId,
      imageId: image.id,
      datastore: await taskDatastore(datastore, host, image),
      points: flattenPoints(image, plan),
      template: image.template,
    }),
  };
}

/**
 * Commit of a flatten: the image gets its new base and is READY again, the VM's ACTIVE_FLATTEN
 * is cleared, and answers the backup ids no longer referenced (the caller removes them).
 */
export async function commitFlatten(input: MaintenanceInput, host: unknown): Promise<string[]> {
  const result = FlattenResult.parse(host);
  if (input.imageId === null) throw new Conflict('a flatten needs an image');
  const image = await images.get(input.imageId);
  let unreferenced: string[] = [];
  if (image.state === 'LOCKED' && image.executionId === input.executionId) {
    const plan = planFlatten(image, await vms.get(image.vmId));
    if (!plan) throw new Conflict(`Image ${image.id}: its flatten plan changed while it ran`);
    const next = flattenedImage(image, plan, result);
    unreferenced = next.unreferenced;
    await images.put(
      { ...next.image, state: 'READY' },
      {
        expression: '#s = :locked AND #e = :e',
        names: { '#s': 'state', '#e': 'executionId' },
        values: { ':locked': 'LOCKED', ':e': input.executionId },
      },
    );
  }
  await endFlatten(image.vmId);
  return unreferenced;
}

/** After a failed flatten: the chain as it was, READY, and ACTIVE_FLATTEN cleared. */
export async function failFlatten(executionId: string, imageId: number | undefined): Promise<void> {
  if (imageId === undefined) return;
  const image = await images.find(imageId);
  if (!image) return;
  if (image.state === 'LOCKED' && image.executionId === executionId) {
    await images.update(image.id, { state: 'READY' });
  }
  await endFlatten(image.vmId);
}

async function endFlatten(vmId: number): Promise<void> {
  const vm = await vms.find(vmId);
  if (!vm || !flattening(vm)) return;
  // Only that key: a BACKUP_CONFIG change made meanwhile is kept.
  await vms.update(vm.id, {}, { remove: ['backups.BACKUP_CONFIG.ACTIVE_FLATTEN'] });
}
