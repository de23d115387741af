/**
 * Restore drills (`lifeboat image verify IMAGEID --restore`): one `drill` maintenance execution
 * per request, its report (core/model.ts Drill) written RUNNING in the same transaction that
 * queues it, and the outcome recorded on the report and on the image (`verifyState`,
 * `verifiedAt`, as a verify does). A scheduled drill queues through {@link enqueueDrill} too.
 */
import type { DrillResult } from '#core/contracts/tasks.ts';
import { drillSample } from '#core/drill.ts';
import { Conflict } from '#core/errors.ts';
import { type Datastore, Drill, type Execution, type Host, type Image } from '#core/model.ts';
import { allocateId } from '../repo/counters.ts';
import { drills } from '../repo/drills.ts';
import { listImages } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { enqueueMaintenance, maintenanceHost, sourcesOf } from './maintenance.ts';
import { recordVerification } from './verify.ts';

/** What a drill request asks beyond the image. */
export interface DrillOptions {
  /** Start a VM from the latest point only (default: from every point of a chain). */
  latestOnly?: boolean;
  /** Dispatch priority 0-99. */
  priority?: number;
  /** Leave waking the dispatcher to the caller (a schedule queueing several). */
  wake?: boolean;
}

/**
 * Queue a drill of a READY `image` on `host`: answers its report (RUNNING) and its execution
 * (QUEUED). Conflict when the image cannot be read or holds no template to define a VM from.
 */
export async function enqueueDrill(
  requestedBy: { name: string },
  image: Image,
  datastore: Datastore,
  host: Host,
  options: DrillOptions = {},
): Promise<{ drill: Drill; execution: Execution }> {
  if (image.state !== 'READY')
    throw new Conflict(`Image ${image.id} is ${image.state}: only READY images can be drilled`);
  if (sourcesOf(image).length === 0) throw new Conflict(`Image ${image.id} has no stored backup`);
  if (!image.template)
    throw new Conflict(`Image ${image.id} holds no VM template: a drill has no VM to define`);
  if (!host.queueUrl) throw new Conflict(`Host ${host.id} has no task queue`);
  const id = await allocateId('drill');
  const executionId = String(await allocateId('execution'));
  const latestOnly = options.latestOnly ?? false;
  const drill = Drill.parse({
    id,
    imageId: image.id,
    vmId: image.vmId,
    datastoreId: datastore.id,
    hostId: host.id,
    executionId,
    latestOnly,
    result: 'RUNNING',
    requestedBy: requestedBy.name,
    createdAt: new Date().toISOString(),
  });
  const execution = await enqueueMaintenance(
    requestedBy,
    {
      kind: 'drill',
      id: executionId,
      host,
      datastore,
      image,
      priority: options.priority,
      drill: { id, latestOnly },
    },
    {
      ...(options.wake !== undefined && { wake: options.wake }),
      also: [
        { Put: { TableName: drills.name, Item: drill, ConditionExpression: 'attribute_not_exists(id)' } },
      ],
    },
  );
  return { drill, execution };
}

/**
 * A scheduled drill's run (`datastore sched add DSID --action drill --sample N`, or a backup
 * job's): `sample` of the READY images of the datastore (of the job only, with `jobId`), the
 * least recently verified first (core/drill.ts drillSample), each drilled on the host
 * maintenance picks. Answers the executions queued.
 */
export async function enqueueScheduledDrills(
  requestedBy: { name: string },
  datastore: Datastore,
  options: { jobId?: number; sample: number; priority?: number },
): Promise<Execution[]> {
  const candidates = (await listImages({ datastoreId: datastore.id })).filter(
    (image) => sourcesOf(image).length > 0 && (options.jobId === undefined || image.jobId === options.jobId),
  );
  const queued: Execution[] = [];
  for (const image of drillSample(candidates, options.sample)) {
    const host = await maintenanceHost(datastore, image.vmId);
    const { execution } = await enqueueDrill(requestedBy, image, datastore, host, {
      priority: options.priority,
      wake: false,
    });
    queued.push(execution);
  }
  return queued;
}

/** The drill's host work started (Admit): `startedAt`, once. */
export async function drillStarted(drillId: number, now = new Date().toISOString()): Promise<void> {
  await drills
    .update(
      drillId,
      { startedAt: now },
      { condition: { expression: 'attribute_not_exists(#s)', names: { '#s': 'startedAt' } } },
    )
    .catch((err) => {
      if (!isConditionFailed(err)) throw err;
    });
}

/** A drill that passed: its figures on the report, and the image verified OK. */
export async function drillSucceeded(
  drillId: number,
  imageId: number,
  result: DrillResult,
  queuedAt: string,
  now = new Date().toISOString(),
): Promise<void> {
  await drills.update(drillId, {
    result: 'OK',
    points: result.points,
    bytes: result.bytes,
    seconds: Math.round(result.durationMs / 100) / 10,
    endedAt: now,
  });
  await recordVerification(imageId, { state: 'OK', queuedAt }, now);
}

/** A drill that failed: the report FAILED with why, and the image's verifyState FAILED. */
export async function drillFailed(
  drillId: number,
  imageId: number | undefined,
  message: string,
  now = new Date().toISOString(),
): Promise<void> {
  await drills
    .update(drillId, { result: 'FAILED', error: message.slice(0, 2000), endedAt: now })
    .catch((err) => {
      // A report lost (deleted by hand) leaves the image's state to record.
      if ((err as Error).name !== 'NotFound') throw err;
    });
  if (imageId !== undefined) await recordVerification(imageId, { state: 'FAILED', message }, now);
}

/**
 * A drill whose execution ended without its Commit (cancelled, timed out, failed): a report still
 * RUNNING becomes FAILED saying how it ended (MarkFailed then writes the runner's message). The
 * image's verifyState is left alone: nothing was found wrong with its data.
 */
export async function drillEnded(
  drillId: number,
  state: string,
  error?: { name: string; message: string },
  now = new Date().toISOString(),
): Promise<void> {
  const why = error ? `${error.name}: ${error.message}` : `the drill's execution ended ${state}`;
  await drills
    .update(
      drillId,
      { result: 'FAILED', error: why.slice(0, 2000), endedAt: now },
      {
        condition: {
          expression: '#r = :running',
          names: { '#r': 'result' },
          values: { ':running': 'RUNNING' },
        },
      },
    )
    .catch((err) => {
      // Already ended, or the report is gone: nothing to do.
      if (!isConditionFailed(err)) throw err;
    });
}
