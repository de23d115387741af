/**
 * `POST /downloads {url, toPath, hostId?}`: writes one file of a stored backup to a path on a
 * host. The URL (core/downloader-url.ts) names the datastore and the backup; the host is the one
 * named (admins only), else the maintenance host rule (BRIDGE_LIST, the VM's host, any MONITORED
 * host). The runner writes a user's file only under the host's restore roots (`confine`).
 * Answers 202 with the `download` execution.
 */
import { z } from 'zod';
import { parseBody } from '#core/contracts/api.ts';
import { DownloadTask } from '#core/contracts/tasks.ts';
import { parseDownloadUrl, pointFiles } from '#core/downloader-url.ts';
import { Conflict, NotFound, ValidationError } from '#core/errors.ts';
import { Id, type Image } from '#core/model.ts';
import { enqueueMaintenance, requestedHost, sourcesOf } from '../../operations/maintenance.ts';
import { datastores } from '../../repo/datastores.ts';
import { listImages } from '../../repo/images.ts';
import { assertAdmin, authorize } from '../access.ts';
import { json, type RouteHandler } from '../http.ts';

/**
 * The request body; toPath follows the task's rule (relative: under the host's first restore
 * root; no `..`, no leading `-`). Only an admin may name the host (`hostId`).
 */
export const DownloadRequestBody = z.strictObject({
  url: z.string().min(1).max(2048),
  toPath: DownloadTask.shape.toPath,
  hostId: Id.optional(),
  priority: z.number().int().min(0).max(49).optional(),
});

const create: RouteHandler = async (ctx) => {
  const body = parseBody(DownloadRequestBody, ctx.body);
  if (body.hostId !== undefined) assertAdmin(ctx.user, 'name a host');
  const url = parseDownloadUrl(body.url);
  const datastore = await datastores.get(url.datastoreId);
  authorize(ctx, 'datastore', datastore);
  if (url.scheme !== datastore.driver) {
    throw new ValidationError(
      `url: datastore ${datastore.id} is a ${datastore.driver} datastore: use ${datastore.driver}:// URLs`,
    );
  }
  const image = (await listImages({ datastoreId: datastore.id })).find(
    (i: Image) => sourcesOf(i).includes(url.backupId) && (url.scheme !== 'rsync' || i.vmId === url.vmId),
  );
  if (!image) throw new NotFound(`Datastore ${datastore.id} has no backup ${url.backupId}`);
  authorize(ctx, 'image', image);
  if (image.state !== 'READY') {
    throw new Conflict(`Image ${image.id} is ${image.state}: only READY images can be downloaded`);
  }
  // Every restore point (the FULL or an increment) names its own files.
  const files = pointFiles(image).find((p) => p.backupId === url.backupId)?.files ?? [];
  if (!files.includes(url.file)) {
    throw new NotFound(`Backup ${url.backupId} has no file ${url.file} (files: ${files.join(', ')})`);
  }
  const host = await requestedHost(datastore, image.vmId, body.hostId);
  const execution = await enqueueMaintenance(ctx.user, {
    kind: 'download',
    host,
    datastore,
    image,
    backupId: url.backupId,
    file: url.file,
    toPath: body.toPath,
    // Recorded now, from who asked: the runner confines a user's download to the restore roots.
    confine: ctx.user.role !== 'admin',
    priority: body.priority,
  });
  return json(execution, 202);
};

/** Download routes by route key. */
export const downloadRoutes: Record<string, RouteHandler> = {
  'POST /downloads': create,
};
