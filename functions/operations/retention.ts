/**
 * Retention after a backup is committed: which of the VM's backups expire and whether the
 * chain just extended is flattened. KEEP_LAST alone works as it always has (the oldest full
 * backups beyond it expire; a chain with more points is flattened); with any of KEEP_HOURLY ..
 * KEEP_YEARLY set, the GFS rules of core/gfs.ts decide over every point of the VM's backups.
 * An older chain is then kept whole while any of its points is kept, and removed when none is:
 * only the chain being extended is flattened, so one VM never has two flattens at once.
 */
import { type GfsPolicy, gfsPlan, type RetentionImage } from '#core/gfs.ts';
import type { Image, Vm } from '#core/model.ts';
import { type FlattenPlan, flattenPlan, removeLast } from '#core/retention.ts';
import { log } from '#platform/log.ts';
import { batchFind } from '../repo/batch.ts';
import { images } from '../repo/images.ts';
import { keepLastOf, planFlatten, retentionConfigOf } from './flatten.ts';

/** What retention asks after a commit. */
export interface RetentionDecision {
  /** Image ids that leave BACKUP_IDS and are deleted (never the image just committed). */
  expired: number[];
  /** The flatten of the committed chain image, or null. */
  flatten: FlattenPlan | null;
}

/** The GFS policy for `image`'s VM (the job's keys under the VM's own), or null. */
export function gfsOf(vm: Vm, image?: Pick<Image, 'jobId' | 'backupConfig'>): GfsPolicy | null {
  return retentionConfigOf(vm, image)?.gfs ?? null;
}

/**
 * Retention once `image` (READY or not) is committed and `backupIds` (the VM's BACKUP_IDS with
 * it appended) are the VM's backups.
 */
export async function decideRetention(
  vm: Vm,
  image: Image,
  backupIds: readonly number[],
): Promise<RetentionDecision> {
  const policy = gfsOf(vm, image);
  if (!policy) {
    // KEEP_LAST counts full backups; an increment chain is trimmed by flattening instead.
    const expired =
      image.mode === 'FULL'
        ? removeLast(backupIds, keepLastOf(vm, image)).filter((id) => id !== image.id)
        : [];
    return { expired, flatten: image.state === 'READY' ? planFlatten(image, vm) : null };
  }
  const others = backupIds.filter((id) => id !== image.id);
  const found = others.length > 0 ? await batchFind([{ table: images, keys: others }]) : new Map();
  const held = [
    ...others.flatMap((id) => {
      const other = found.get(images.name)?.get(id) as Image | undefined;
      // An image BACKUP_IDS names but that is gone or mid-delete has nothing to weigh.
      return other && (other.state === 'READY' || other.state === 'LOCKED') ? [other] : [];
    }),
    image,
  ];
  const plan = gfsPlan(retentionImages(held), policy);
  const expired = plan.removeImages.filter((id) => id !== image.id);
  const mine = plan.flatten.find((f) => f.imageId === image.id);
  return {
    expired,
    flatten: mine && image.state === 'READY' ? chainFlatten(image, mine.keepFrom) : null,
  };
}

/** The images as GFS sees them: a FULL backup is one point, a chain its points (own ids) in order. */
function retentionImages(held: readonly Image[]): RetentionImage[] {
  return held.map((image) => ({
    imageId: image.id,
    points:
      image.mode === 'INCREMENT' && image.increments.length > 0
        ? [...image.increments].sort((a, b) => a.id - b.id).map((inc) => ({ id: inc.id, at: inc.date }))
        : [{ id: image.id, at: image.increments[0]?.date ?? image.createdAt }],
  }));
}

/** The flatten that makes increment `keepFrom` the chain's new base. */
function chainFlatten(image: Image, keepFrom: number): FlattenPlan | null {
  const keep = image.increments.filter((inc) => inc.id >= keepFrom).length;
  try {
    return flattenPlan(image.increments, keep);
  } catch (err) {
    log('error', 'GFS retention: the increment chain cannot be flattened', {
      imageId: image.id,
      message: (err as Error).message,
    });
    return null;
  }
}
