/**
 * KEEP_LAST on an increment chain (see `retention.ts` for the plan): what a flatten reads, and
 * the image once its new base is stored. Pure: the Lambdas apply it.
 */
import { type PointBackup, restoreChain } from './chain.ts';
import { Conflict } from './errors.ts';
import type { Image, Increment } from './model.ts';
import type { FlattenPlan } from './retention.ts';

/** The stored backups merged into the new base: the chain's FULL, then its increments up to it. */
export function flattenPoints(image: Image, plan: FlattenPlan): PointBackup[] {
  const chain = restoreChain(
    image,
    image.disks.map((d) => d.id),
    plan.newBase,
  );
  return [chain.full, ...chain.increments];
}

/** A stored new base, as the runner answers it. */
export interface NewBase {
  backupId: string;
  disks: { id: number; file: string; size: number; virtualSize: number }[];
}

/**
 * The image after its flatten: the new base is point `plan.newBase` as a FULL (with that point's
 * checkpoint, so the next increment still follows it), the points after it unchanged, and the
 * merged points gone. Also the backup ids no longer referenced, to remove from the datastore.
 * Applied twice, it changes nothing more (the retry of a commit).
 */
export function flattenedImage(
  image: Image,
  plan: FlattenPlan,
  base: NewBase,
): { image: Image; unreferenced: string[] } {
  if (image.source === base.backupId) return { image, unreferenced: [] };
  const byId = new Map(image.increments.map((i) => [i.id, i]));
  const point = byId.get(plan.newBase);
  if (!point) throw new Conflict(`image ${image.id} has no point ${plan.newBase} to make its base`);
  const size = base.disks.reduce((sum, d) => sum + d.size, 0);
  const newBase: Increment = {
    id: plan.newBase,
    type: 'FULL',
    source: base.backupId,
    size,
    date: point.date,
    disks: base.disks.map((d) => ({ id: d.id, file: d.file, size: d.size })),
    ...(point.checkpoint ? { checkpoint: point.checkpoint } : {}),
  };
  const kept = plan.keep.slice(1).map((id) => byId.get(id) as Increment);
  const merged = plan.merge.map((id) => byId.get(id)?.source).filter((s): s is string => Boolean(s));
  const increments = [newBase, ...kept];
  return {
    image: {
      ...image,
      source: base.backupId,
      disks: base.disks.map((d) => ({
        id: d.id,
        size: d.size,
        virtualSize: d.virtualSize,
        format: 'qcow2',
        file: d.file,
      })),
      size: increments.reduce((sum, i) => sum + i.size, 0),
      increments,
    },
    unreferenced: [...new Set(merged)],
  };
}
