/**
 * Maintenance operations (`delete`, `download`, `verify`, `monitor`, `flatten`): the Maintenance state
 * machine's input, which host runs them, and queueing them. The API (image delete, downloads)
 * and CommitBackup (KEEP_LAST retention) queue them through here, so every caller picks the host
 * and builds the input the same way.
 */
import { z } from 'zod';
import type { MaintenanceTaskKind } from '#core/contracts/tasks.ts';
import { Conflict, NotFound } from '#core/errors.ts';
import { type Datastore, type Execution, type Host, Id, type Image, MaintenanceKind } from '#core/model.ts';
import { hosts } from '../repo/hosts.ts';
import { images } from '../repo/images.ts';
import { isConditionFailed } from '../repo/table.ts';
import { vms } from '../repo/vms.ts';
import { enqueue } from './queue.ts';

/** The host task each maintenance operation sends. */
export const TASK_KIND_OF: Record<MaintenanceKind, MaintenanceTaskKind> = {
  delete: 'rm',
  download: 'download',
  verify: 'verify',
  monitor: 'monitor',
  flatten: 'flatten',
  import: 'catalog',
  drill: 'drill',
};

/** The Maintenance state machine's input (every field present; null when the kind has none). */
export const MaintenanceInput = z.looseObject({
  executionId: z.string().min(1),
  kind: MaintenanceKind,
  hostId: Id,
  datastoreId: Id,
  imageId: Id.nullable(),
  /** The stored backup the task works on (one image may hold several: an increment chain). */
  backupId: z.string().min(1).nullable(),
  file: z.string().min(1).nullable(),
  toPath: z.string().min(1).nullable(),
  /**
   * Whether the host's restore roots bound `toPath`: false only when an admin asked (recorded
   * by the API from the requesting user, never looked up again). Absent: true.
   */
  confine: z.boolean().default(true),
  /** A drill's report id (operations/drill.ts); absent for the other kinds. */
  drillId: Id.optional(),
  /** A drill starts a VM from the latest point only; absent: from every point. */
  latestOnly: z.boolean().optional(),
});
export type MaintenanceInput = z.infer<typeof MaintenanceInput>;

/** Host names of a datastore's BRIDGE_LIST (stored space separated; commas accepted too). */
export function bridgeList(datastore: Pick<Datastore, 'attributes'>): string[] {
  return (datastore.attributes.BRIDGE_LIST ?? '').split(/[\s,]+/).filter(Boolean);
}

/**
 * The host that runs a maintenance task on `datastore`: the first MONITORED host of its
 * BRIDGE_LIST when set; else the host of the image's VM when MONITORED; else any MONITORED host
 * (lowest id). Conflict naming the reason when there is none.
 */
export async function maintenanceHost(datastore: Datastore, vmId?: number): Promise<Host> {
  const all = (await hosts.list()).sort((a, b) => a.id - b.id);
  const usable = (h: Host) => h.state === 'MONITORED' && h.queueUrl !== undefined;
  const bridges = bridgeList(datastore);
  if (bridges.length > 0) {
    const found = bridges.map((name) => all.find((h) => h.name === name)).find((h) => h && usable(h));
    if (found) return found;
    throw new Conflict(
      `no MONITORED host of datastore ${datastore.id}'s BRIDGE_LIST (${bridges.join(', ')}) can run the task`,
    );
  }
  const vm = vmId === undefined ? undefined : await vms.find(vmId);
  const vmHost = vm && all.find((h) => h.id === vm.hostId);
  if (vmHost && usable(vmHost)) return vmHost;
  const any = all.find(usable);
  if (any) return any;
  throw new Conflict(
    `no MONITORED host can run a task on datastore ${datastore.id}: register a host (its runner reports inventory) or set BRIDGE_LIST`,
  );
}

/**
 * The host of a maintenance task a user asked for: the one an admin named (`hostId`), else
 * {@link maintenanceHost}'s choice; Conflict when it has no task queue.
 */
export async function requestedHost(datastore: Datastore, vmId: number, hostId?: number): Promise<Host> {
  const host = hostId === undefined ? await maintenanceHost(datastore, vmId) : await hosts.get(hostId);
  if (!host.queueUrl) throw new Conflict(`Host ${host.id} has no task queue`);
  return host;
}

/** The stored backups of an image: its source and its increments' sources, each once. */
export function sourcesOf(image: Pick<Image, 'source' | 'increments'>): string[] {
  return [...new Set([image.source, ...image.increments.map((i) => i.source)].filter(Boolean))];
}

/**
 * Claim an image's deletion: READY or ERROR becomes DELETING with its deletes not yet queued;
 * a DELETING image whose deletes were never queued (its claimer crashed, or this is a retry) is
 * claimed again. False when it is in another state (LOCKED, DELETING and queued) or gone. The
 * claimer queues the deletes, then calls {@link deletionQueued}. Two claimers of a stranded
 * image may both queue: deleting a backup twice is harmless (drivers' rm is idempotent).
 */
export async function claimDeletion(imageId: number): Promise<boolean> {
  try {
    await images.update(
      imageId,
      { state: 'DELETING', deleteQueued: false },
      {
        condition: {
          expression: '#s IN (:ready, :error) OR (#s = :deleting AND #q = :false)',
          names: { '#s': 'state', '#q': 'deleteQueued' },
          values: { ':ready': 'READY', ':error': 'ERROR', ':deleting': 'DELETING', ':false': false },
        },
      },
    );
    return true;
  } catch (err) {
    if (isConditionFailed(err)) return false;
    throw err;
  }
}

/** Marks a claimed image's deletes as queued (see {@link claimDeletion}). */
export async function deletionQueued(imageId: number): Promise<void> {
  await images.update(imageId, { deleteQueued: true }).catch((err) => {
    // Already forgotten by a fast delete: nothing left to mark.
    if (!(err instanceof NotFound)) throw err;
  });
}

/** What to queue, beyond the kind: the state machine input fields and the execution's params. */
export interface MaintenanceRequest {
  kind: MaintenanceKind;
  host: Host;
  datastore: Datastore;
  image?: Image;
  backupId?: string;
  file?: string;
  toPath?: string;
  /** False when an admin asked: a download may then write outside the host's restore roots. */
  confine?: boolean;
  priority?: number;
  /** An execution id the caller already allocated (counter `id:execution`); default: a new one. */
  id?: string;
  /** A drill's report id and whether it boots only the latest point. */
  drill?: { id: number; latestOnly: boolean };
}

/** Queue one maintenance operation; answers its Execution (QUEUED). */
export function enqueueMaintenance(
  requestedBy: { name: string },
  req: MaintenanceRequest,
  options: Pick<Parameters<typeof enqueue>[2] & object, 'wake' | 'also'> = {},
): Promise<Execution> {
  const fields = {
    kind: req.kind,
    hostId: req.host.id,
    datastoreId: req.datastore.id,
    imageId: req.image?.id ?? null,
    backupId: req.backupId ?? null,
    file: req.file ?? null,
    toPath: req.toPath ?? null,
    confine: req.confine ?? true,
    ...(req.drill && { drillId: req.drill.id, latestOnly: req.drill.latestOnly }),
  };
  return enqueue(
    requestedBy,
    {
      ...(req.id !== undefined && { id: req.id }),
      kind: req.kind,
      priority: req.priority ?? 0,
      hostId: req.host.id,
      vmId: req.image?.vmId,
      datastoreId: req.datastore.id,
      imageId: req.image?.id,
      params: Object.fromEntries(
        Object.entries({
          backupId: fields.backupId,
          file: fields.file,
          toPath: fields.toPath,
          drillId: req.drill?.id ?? null,
          latestOnly: req.drill?.latestOnly ?? null,
        }).filter(([, v]) => v !== null),
      ),
      input: (executionId) => MaintenanceInput.parse({ executionId, ...fields }),
    },
    options,
  );
}

/**
 * Queue the removal of a claimed (DELETING) image's data on `host`: one `delete` execution per
 * stored backup of the image (CommitMaintenance removes the record once the last is gone).
 */
export async function enqueueDeletes(
  requestedBy: { name: string },
  image: Image,
  datastore: Datastore,
  host: Host,
  options: { wake?: boolean } = {},
): Promise<Execution[]> {
  const queued: Execution[] = [];
  for (const backupId of sourcesOf(image)) {
    queued.push(
      await enqueueMaintenance(requestedBy, { kind: 'delete', host, datastore, image, backupId }, options),
    );
  }
  await deletionQueued(image.id);
  return queued;
}
