/**
 * Image routes: list, show (each with its `downloadUrls`), delete (removes the data through a
 * `delete` execution), and restore requests.
 */
import { z } from 'zod';
import { checkRestoreOptions, ImageListQuery, parseBody, RestoreRequestBody } from '#core/contracts/api.ts';
import { downloadUrlsOf } from '#core/downloader-url.ts';
import { Conflict, NotFound, ValidationError } from '#core/errors.ts';
import { assertPriority } from '#core/jobs.ts';
import type { Datastore, Image } from '#core/model.ts';
import { assertPoolAllowed } from '#core/restore-pools.ts';
import { templateDisks } from '#core/template-host.ts';
import { retry } from '#platform/retry.ts';
import { enqueueDrill } from '../../operations/drill.ts';
import {
  claimDeletion,
  enqueueDeletes,
  maintenanceHost,
  requestedHost,
  sourcesOf,
} from '../../operations/maintenance.ts';
import { enqueue } from '../../operations/queue.ts';
import { deleteImageRecord } from '../../operations/quota.ts';
import { enqueueVerifies } from '../../operations/verify.ts';
import { datastores } from '../../repo/datastores.ts';
import { executions } from '../../repo/executions.ts';
import { hosts } from '../../repo/hosts.ts';
import { images, listImages } from '../../repo/images.ts';
import { isConditionFailed } from '../../repo/table.ts';
import { vms } from '../../repo/vms.ts';
import { assertAdmin, authorize, canUse } from '../access.ts';
import { items, json, pathId, type RouteContext, type RouteHandler } from '../http.ts';

/** The image of the path, checked for the right the route's row asks (core/rights.ts). */
async function imageFor(ctx: RouteContext): Promise<Image> {
  const image = await images.get(pathId(ctx));
  authorize(ctx, 'image', image);
  return image;
}

/** An image as the API shows it: the record plus one download URL per stored file. */
export type ImageView = Image & { downloadUrls: string[] };

/** Views of `list`, reading each datastore once. */
async function views(list: readonly Image[]): Promise<ImageView[]> {
  const byId = new Map<number, Promise<Datastore | undefined>>();
  return Promise.all(
    list.map(async (image) => {
      let ds = byId.get(image.datastoreId);
      if (!ds) {
        ds = datastores.find(image.datastoreId);
        byId.set(image.datastoreId, ds);
      }
      const datastore = await ds;
      return { ...image, downloadUrls: datastore ? downloadUrlsOf(datastore.driver, image) : [] };
    }),
  );
}

const list: RouteHandler = async (ctx) => {
  // `type` is accepted for the CLI's `--type backup`; every image is a backup image today.
  const { type, ...rest } = ctx.query;
  if (type !== undefined && type.toLowerCase() !== 'backup') {
    throw new ValidationError(`type: must be backup (got "${type.slice(0, 40)}")`);
  }
  const query = parseBody(ImageListQuery, rest);
  const found = await listImages(query);
  return items(await views(found.filter((i) => canUse(ctx.user, i))));
};

const show: RouteHandler = async (ctx) => json((await views([await imageFor(ctx)]))[0]);

/** Take an image id out of its VM's BACKUP_IDS, retrying if a commit changes the list meanwhile. */
async function forgetBackupId(vmId: number, imageId: number): Promise<void> {
  await retry(
    async () => {
      const vm = await vms.find(vmId);
      if (!vm?.backups.BACKUP_IDS.includes(imageId)) return;
      await vms.update(
        vmId,
        { 'backups.BACKUP_IDS': vm.backups.BACKUP_IDS.filter((id) => id !== imageId) },
        {
          condition: {
            expression: '#b.#i = :old',
            names: { '#b': 'backups', '#i': 'BACKUP_IDS' },
            values: { ':old': vm.backups.BACKUP_IDS },
          },
        },
      );
    },
    {
      attempts: 5,
      retryOn: isConditionFailed,
      exhausted: () => new Conflict(`VM ${vmId} changed while image ${imageId} was being removed: try again`),
    },
  );
}

/** Delete an image with no stored data at once (a failed backup's ERROR image). */
async function removeRecord(image: Image): Promise<void> {
  try {
    // With its datastore quota charge, if it has one, given back in the same transaction.
    await deleteImageRecord(image, {
      expression: '#s = :s AND #src = :src',
      names: { '#s': 'state', '#src': 'source' },
      values: { ':s': image.state, ':src': image.source },
    });
  } catch (err) {
    if (isConditionFailed(err)) throw new Conflict(`Image ${image.id} changed meanwhile: try again`);
    throw err;
  }
}

/**
 * READY or ERROR images only (LOCKED or DELETING: 409). With stored data: DELETING, out of its
 * VM's BACKUP_IDS, and a `delete` execution queued (202 with it). Without: removed now (204).
 */
/** Why a LOCKED image cannot be deleted now, naming the operation that holds it. */
async function lockedMessage(image: Image): Promise<string> {
  const holder = image.executionId ? await executions.find(image.executionId) : undefined;
  if (holder?.kind === 'flatten') {
    return `Image ${image.id} is being flattened for KEEP_LAST (ACTIVE_FLATTEN, execution ${holder.id}): delete it when that ends`;
  }
  const by = holder ? ` (${holder.kind} execution ${holder.id})` : '';
  return `Image ${image.id} is LOCKED by a running operation${by}`;
}

const remove: RouteHandler = async (ctx) => {
  const image = await imageFor(ctx);
  if (image.state === 'LOCKED') throw new Conflict(await lockedMessage(image));
  if (image.state === 'DELETING' && image.deleteQueued !== false)
    throw new Conflict(`Image ${image.id} is already being deleted`);
  if (!image.source && image.increments.every((i) => !i.source)) {
    await removeRecord(image);
    await forgetBackupId(image.vmId, image.id);
    return { statusCode: 204 };
  }
  const datastore = await datastores.get(image.datastoreId);
  // The host first: when none can run it, nothing has changed yet.
  const host = await maintenanceHost(datastore, image.vmId);
  if (!(await claimDeletion(image.id))) {
    const now = await images.get(image.id);
    throw new Conflict(`Image ${image.id} is ${now.state}: only READY or ERROR images can be deleted`);
  }
  await forgetBackupId(image.vmId, image.id);
  const [first] = await enqueueDeletes(ctx.user, { ...image, state: 'DELETING' }, datastore, host);
  return json(first, 202);
};

/**
 * `POST /images/{id}/restore`: checks the options against the image (and, in place, the VM) so
 * that a request that cannot work is refused before anything is queued. Only an admin may name
 * the host; a user's `targetDir` is kept under the host's restore roots by the runner.
 */
const restore: RouteHandler = async (ctx) => {
  const image = await imageFor(ctx);
  const options = parseBody(RestoreRequestBody, ctx.body);
  assertPriority(ctx.user.role, options.priority);
  if (options.hostId !== undefined) assertAdmin(ctx.user, 'name a host');
  const { define } = checkRestoreOptions(options);
  if (image.state !== 'READY')
    throw new Conflict(`Image ${image.id} is ${image.state}: only READY images can be restored`);
  const held = image.disks.map((d) => d.id);
  if (options.diskId !== undefined && !held.includes(options.diskId)) {
    throw new ValidationError(
      `diskId: disk ${options.diskId} is not part of the backup (image ${image.id} holds disk ${held.join(', ')})`,
    );
  }
  if (define || options.inPlace) {
    const missing = missingDisks(image);
    if (missing.length > 0 && (define || options.diskId === undefined)) {
      throw new ValidationError(
        `image ${image.id}: cannot restore a VM from a single-disk backup (it lacks disk ${missing.join(', ')}); restore one disk with diskId`,
      );
    }
  }
  if (options.incrementId !== undefined && !image.increments.some((i) => i.id === options.incrementId)) {
    throw new ValidationError(`incrementId: image ${image.id} has no increment ${options.incrementId}`);
  }
  const datastore = await datastores.get(image.datastoreId);
  let hostId = options.hostId;
  if (options.inPlace) {
    const vm = await vms.find(image.vmId);
    if (!vm) throw new NotFound(`VM ${image.vmId} does not exist: nothing to restore in place`);
    authorize(ctx, 'vm', vm);
    if (vm.state !== 'POWEROFF')
      throw new Conflict(`VM ${vm.id} is ${vm.state}: an in-place restore needs it POWEROFF`);
    if (vm.lock) throw new Conflict(`VM ${vm.id} is locked by execution ${vm.lock}`);
    hostId = vm.hostId;
  } else if (hostId === undefined) {
    const vm = await vms.find(image.vmId);
    if (!vm) throw new ValidationError(`hostId: required, since VM ${image.vmId} no longer exists`);
    hostId = vm.hostId;
  }
  const host = await hosts.find(hostId);
  if (!host) throw new NotFound(`Host ${hostId} does not exist`);
  assertPoolAllowed(options.pool, host);
  const { priority, ...rest } = options;
  // `confine` is recorded now, from who asked: the runner keeps a user's restore under the
  // host's restore roots (an admin may name any absolute folder).
  const params = { ...rest, hostId: host.id, define, confine: ctx.user.role !== 'admin' };
  const execution = await enqueue(ctx.user, {
    kind: 'restore',
    priority: priority ?? 0,
    hostId: host.id,
    vmId: image.vmId,
    datastoreId: datastore.id,
    imageId: image.id,
    params,
    input: (executionId) => ({ executionId, imageId: image.id, options: params }),
  });
  return json(execution, 202);
};

/** Disks of the backed-up VM (volatile ones aside) that the image does not hold. */
function missingDisks(image: Image): number[] {
  if (!image.template) return [];
  const held = new Set(image.disks.map((d) => d.id));
  let disks: ReturnType<typeof templateDisks>;
  try {
    disks = templateDisks(image.template);
  } catch {
    // A template that does not parse names no disks; Admit reports it if it is needed.
    return [];
  }
  return disks.filter((d) => !d.volatile && !held.has(d.id)).map((d) => d.id);
}

/** `POST /images/{id}/verify`: the host is chosen as for any maintenance (admins may name one). */
export const VerifyRequestBody = z
  .strictObject({
    hostId: z.number().int().nonnegative().optional(),
    /** Dispatch priority 0-99; users up to 49. */
    priority: z.number().int().min(0).max(99).optional(),
    /** A restore drill instead of a data check (operations/drill.ts). */
    restore: z.boolean().optional(),
    /** A drill starts a VM from the latest point of a chain only (default: every point). */
    latestOnly: z.boolean().optional(),
  })
  .refine((b) => b.latestOnly === undefined || b.restore === true, {
    message: 'latestOnly: only with restore: true',
    path: ['latestOnly'],
  });

/**
 * `POST /images/{id}/verify` (`lifeboat image verify`): a READY image's stored backups read back
 * on a host, each against the sha256 recorded at backup time: one `verify` execution per stored
 * backup (a chain: per point), answered 202 `{ imageId, executions }`. The outcome lands on the
 * image (`verifyState`, `verifiedAt`, `verifyError`: operations/verify.ts). With `restore: true`,
 * a restore drill instead (operations/drill.ts): one `drill` execution and its report, answered
 * 202 `{ imageId, drill, executions: [execution] }`.
 */
const verify: RouteHandler = async (ctx) => {
  const image = await imageFor(ctx);
  const body = parseBody(VerifyRequestBody, ctx.body);
  assertPriority(ctx.user.role, body.priority);
  if (body.hostId !== undefined) assertAdmin(ctx.user, 'name a host');
  if (image.state !== 'READY')
    throw new Conflict(`Image ${image.id} is ${image.state}: only READY images can be verified`);
  if (sourcesOf(image).length === 0) throw new Conflict(`Image ${image.id} has no stored backup`);
  const datastore = await datastores.get(image.datastoreId);
  const host = await requestedHost(datastore, image.vmId, body.hostId);
  if (body.restore) {
    const { drill, execution } = await enqueueDrill(ctx.user, image, datastore, host, {
      latestOnly: body.latestOnly,
      priority: body.priority,
    });
    return json({ imageId: image.id, drill, executions: [execution] }, 202);
  }
  const queued = await enqueueVerifies(ctx.user, image, datastore, host, body.priority);
  return json({ imageId: image.id, executions: queued }, 202);
};

/** Image routes by route key. */
export const imageRoutes: Record<string, RouteHandler> = {
  'GET /images': list,
  'GET /images/{id}': show,
  'DELETE /images/{id}': remove,
  'POST /images/{id}/restore': restore,
  'POST /images/{id}/verify': verify,
};
