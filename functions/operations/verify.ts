/**
 * `image verify`, and a datastore's scheduled verify (every READY image it holds): one `verify` execution per stored backup of an image (its FULL, each point of
 * a chain), each reading its files back on a host against the sha256 recorded at backup time;
 * and the result on the image: `verifyState` OK or FAILED (absent: never verified since it was
 * stored) with `verifiedAt`, and on FAILED the runner's message, which names the file.
 *
 * A chain's points are verified by separate executions that may end in any order: a FAILED is
 * kept against any OK of an execution queued before it failed (the same request, or an older
 * one), so one damaged point leaves the image FAILED until a later request verifies it again.
 */
import type { Datastore, Execution, Host, Image } from '#core/model.ts';
import { leastRecentlyVerified } from '#core/verify-turn.ts';
import { images, listImages } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { enqueueMaintenance, maintenanceHost, sourcesOf } from './maintenance.ts';

/** Queue the verification of every stored backup of `image` on `host`; answers the executions. */
export async function enqueueVerifies(
  requestedBy: { name: string },
  image: Image,
  datastore: Datastore,
  host: Host,
  priority?: number,
  options: { wake?: boolean } = {},
): Promise<Execution[]> {
  const queued: Execution[] = [];
  for (const backupId of sourcesOf(image)) {
    queued.push(
      await enqueueMaintenance(
        requestedBy,
        { kind: 'verify', host, datastore, image, backupId, priority },
        options,
      ),
    );
  }
  return queued;
}

/**
 * A datastore's scheduled verify: {@link enqueueVerifies} for every READY image it holds with a
 * stored backup (LOCKED, ERROR and DELETING ones are left alone), or with `sample` for that many
 * of them by turn (never verified first, then the least recently verified: core/verify-turn.ts),
 * each on the host maintenance picks for it (`maintenanceHost`: BRIDGE_LIST, else its VM's host,
 * else any). Verifies hold a MAX_BACKUPS_HOST slot (core/model.ts `takesSlot`), so a run of many
 * waits in the queue and starts as slots free. Answers the executions queued, in the images'
 * order (listed, or by turn with a sample; none: nothing READY).
 */
export async function enqueueDatastoreVerifies(
  requestedBy: { name: string },
  datastore: Datastore,
  options: { priority?: number; wake?: boolean; sample?: number } = {},
): Promise<Execution[]> {
  const stored = (await listImages({ datastoreId: datastore.id })).filter(
    (image) => image.state === 'READY' && sourcesOf(image).length > 0,
  );
  const ready = options.sample === undefined ? stored : leastRecentlyVerified(stored, options.sample);
  const queued: Execution[] = [];
  // One choice per VM: a datastore of hundreds of images costs a host lookup per VM, not per image.
  const hostOf = new Map<number, Host>();
  for (const image of ready) {
    const host = hostOf.get(image.vmId) ?? (await maintenanceHost(datastore, image.vmId));
    hostOf.set(image.vmId, host);
    queued.push(
      ...(await enqueueVerifies(requestedBy, image, datastore, host, options.priority, {
        wake: options.wake,
      })),
    );
  }
  return queued;
}

/**
 * Records a verify execution's outcome on its image. OK does not replace a FAILED recorded
 * after `queuedAt` (the execution's creation): another point of the same request failed. An
 * image gone meanwhile is left alone.
 */
export async function recordVerification(
  imageId: number,
  outcome: { state: 'OK'; queuedAt: string } | { state: 'FAILED'; message: string },
  now = new Date().toISOString(),
): Promise<void> {
  const exists = { expression: 'attribute_exists(#pk)' };
  try {
    if (outcome.state === 'FAILED') {
      await images.update(
        imageId,
        { verifyState: 'FAILED', verifiedAt: now, verifyError: outcome.message.slice(0, 1000) },
        { condition: exists },
      );
      return;
    }
    await images.update(
      imageId,
      { verifyState: 'OK', verifiedAt: now },
      {
        remove: ['verifyError'],
        condition: {
          expression:
            'attribute_exists(#pk) AND (attribute_not_exists(#vs) OR #vs <> :failed OR #va < :queued)',
          names: { '#vs': 'verifyState', '#va': 'verifiedAt' },
          values: { ':failed': 'FAILED', ':queued': outcome.queuedAt },
        },
      },
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
  }
}
