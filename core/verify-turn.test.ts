import { describe, expect, it } from 'vitest';
import { leastRecentlyVerified } from './verify-turn.ts';

const image = (id: number, verifiedAt?: string) => ({ id, ...(verifiedAt && { verifiedAt }) });

describe('leastRecentlyVerified', () => {
  it('takes the never verified first (by id), then the oldest verification', () => {
    const images = [
      image(1, '2026-03-01T00:00:00Z'),
      image(2),
      image(3, '2026-01-01T00:00:00Z'),
      image(4),
      image(5, '2026-02-01T00:00:00Z'),
    ];
    expect(leastRecentlyVerified(images, 3).map((i) => i.id)).toEqual([2, 4, 3]);
    expect(leastRecentlyVerified(images, 10).map((i) => i.id)).toEqual([2, 4, 3, 5, 1]);
    expect(leastRecentlyVerified(images, 0)).toEqual([]);
    // The caller's list is left in its order.
    expect(images.map((i) => i.id)).toEqual([1, 2, 3, 4, 5]);
  });

  it('run after run, with each pick verified in between, every image gets its turn', () => {
    let images = [image(1), image(2), image(3), image(4), image(5)];
    const picked: number[] = [];
    for (let run = 0; run < 5; run++) {
      const at = new Date(Date.UTC(2026, 0, run + 1)).toISOString();
      const chosen = new Set(leastRecentlyVerified(images, 2).map((i) => i.id));
      picked.push(...chosen);
      images = images.map((i) => (chosen.has(i.id) ? image(i.id, at) : i));
    }
    // Three runs of two cover all five; then the oldest verifications come round again.
    expect(new Set(picked.slice(0, 6)).size).toBe(5);
    expect(picked).toEqual([1, 2, 3, 4, 5, 1, 2, 3, 4, 1]);
  });
});
