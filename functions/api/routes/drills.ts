/**
 * Restore drill reports (`lifeboat drill list | show`): each visible to whoever may use its
 * image; a drill of an image since deleted, to admins only. Drills start through
 * `POST /images/{id}/verify` with `{ "restore": true }` (routes/images.ts).
 */
import { z } from 'zod';
import { IdText, parseBody } from '#core/contracts/api.ts';
import { Forbidden } from '#core/errors.ts';
import type { Drill, Image } from '#core/model.ts';
import { drills, listDrills } from '../../repo/drills.ts';
import { images } from '../../repo/images.ts';
import { assertAllowed, canUse } from '../access.ts';
import { items, json, pathId, type RouteContext, type RouteHandler } from '../http.ts';

/** `GET /drills?imageId=` */
export const DrillListQuery = z.strictObject({ imageId: IdText.optional() });

/** Whether the caller may see a drill of `image` (undefined: the image is gone, admins only). */
function visible(ctx: RouteContext, image: Image | undefined): boolean {
  if (ctx.user.role === 'admin') return true;
  return image !== undefined && canUse(ctx.user, image);
}

const list: RouteHandler = async (ctx) => {
  const query = parseBody(DrillListQuery, ctx.query);
  const found = await listDrills(query.imageId === undefined ? {} : { imageId: query.imageId });
  const byId = new Map<number, Promise<Image | undefined>>();
  const shown: Drill[] = [];
  for (const drill of found) {
    let image = byId.get(drill.imageId);
    if (!image) {
      image = images.find(drill.imageId);
      byId.set(drill.imageId, image);
    }
    if (visible(ctx, await image)) shown.push(drill);
  }
  return items(shown);
};

const show: RouteHandler = async (ctx) => {
  const drill = await drills.get(pathId(ctx));
  const image = await images.find(drill.imageId);
  if (image) assertAllowed(ctx.user, image, 'use', `Image ${image.id}`);
  else if (!visible(ctx, image)) throw new Forbidden(`Drill ${drill.id}: its image is gone (admins only)`);
  return json(drill);
};

/** Drill routes by route key. */
export const drillRoutes: Record<string, RouteHandler> = {
  'GET /drills': list,
  'GET /drills/{id}': show,
};
