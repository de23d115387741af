/**
 * The steps of a KEEP_LAST flatten (queued by functions/operations/flatten.ts): its Admit sends
 * the points to merge; its Commit records the new base, clears ACTIVE_FLATTEN and answers the
 * merged backups to remove. A failed or stopped flatten is undone by endOperation.
 */
import { FlattenResult, FlattenTask } from '#core/contracts/tasks.ts';
import { Conflict } from '#core/errors.ts';
import { flattenedImage, flattenPoints } from '#core/flatten.ts';
import type { Datastore, Host } from '#core/model.ts';
import { clearActiveFlatten } from '../operations/end.ts';
import { planFlatten } from '../operations/flatten.ts';
import type { MaintenanceInput } from '../operations/maintenance.ts';
import { images } from '../repo/images.ts';
import { vms } from '../repo/vms.ts';
import { taskDatastore, taskHeader } from './common.ts';

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
  await clearActiveFlatten(image.vmId);
  return unreferenced;
}
