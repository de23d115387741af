/**
 * Whose turn it is to be proven restorable: a scheduled verify with a sample and a scheduled
 * drill each take the images never verified first, then the least recently verified (by a
 * verify or a drill, `verifiedAt`), so that run after run every image gets its turn. Pure.
 */
import type { Image } from './model.ts';

/** The first `count` of `images` by turn (never verified, then oldest `verifiedAt`; ties by id). */
export function leastRecentlyVerified<I extends Pick<Image, 'id' | 'verifiedAt'>>(
  images: readonly I[],
  count: number,
): I[] {
  // ISO-8601 dates order as text; never verified ('') comes first.
  return [...images]
    .sort((a, b) => (a.verifiedAt ?? '').localeCompare(b.verifiedAt ?? '') || a.id - b.id)
    .slice(0, Math.max(0, count));
}
