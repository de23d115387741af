import { describe, expect, it } from 'vitest';
import { Conflict, ValidationError } from './errors.ts';
import type { Increment } from './model.ts';
import { flattenPlan, removeLast } from './retention.ts';

describe('removeLast', () => {
  it('removes the n-k oldest backups', () => {
    expect(removeLast([10, 11, 12, 13, 14], 2)).toEqual([10, 11, 12]);
  });

  it('keeps all with KEEP_LAST unset or 0', () => {
    expect(removeLast([1, 2, 3], null)).toEqual([]);
    expect(removeLast([1, 2, 3], 0)).toEqual([]);
  });

  it('removes nothing with no backups or fewer than KEEP_LAST', () => {
    expect(removeLast([], 3)).toEqual([]);
    expect(removeLast([1, 2], 3)).toEqual([]);
    expect(removeLast([1, 2, 3], 3)).toEqual([]);
  });

  it('KEEP_LAST=1 leaves only the newest', () => {
    expect(removeLast([4, 9, 20], 1)).toEqual([4, 9]);
  });

  it('follows the list order (oldest first), not numeric order', () => {
    expect(removeLast([30, 7, 12], 1)).toEqual([30, 7]);
  });

  it('rejects a negative or fractional KEEP_LAST', () => {
    expect(() => removeLast([1], -1)).toThrow(ValidationError);
    expect(() => removeLast([1], 1.5)).toThrow(ValidationError);
  });
});

function chain(n: number): Increment[] {
  return Array.from({ length: n }, (_, id) => ({
    id,
    parent: id === 0 ? undefined : id - 1,
    type: id === 0 ? 'FULL' : 'INCREMENT',
    source: `snap-${id}`,
    size: 100,
    date: `2026-01-0${id + 1}T00:00:00Z`,
  }));
}

describe('flattenPlan', () => {
  it('merges the oldest restore points into the first one kept', () => {
    expect(flattenPlan(chain(5), 3)).toEqual({
      newBase: 2,
      merge: [0, 1, 2],
      removed: [0, 1],
      keep: [2, 3, 4],
    });
  });

  it('KEEP_LAST=1 collapses the chain into its last increment', () => {
    expect(flattenPlan(chain(3), 1)).toEqual({ newBase: 2, merge: [0, 1, 2], removed: [0, 1], keep: [2] });
  });

  it('does nothing within KEEP_LAST, with keep all, or for an empty chain', () => {
    expect(flattenPlan(chain(3), 3)).toBeNull();
    expect(flattenPlan(chain(3), 5)).toBeNull();
    expect(flattenPlan(chain(6), null)).toBeNull();
    expect(flattenPlan(chain(6), 0)).toBeNull();
    expect(flattenPlan([], 2)).toBeNull();
  });

  it('accepts increments in any order', () => {
    expect(flattenPlan(chain(4).reverse(), 2)?.merge).toEqual([0, 1, 2]);
  });

  it('refuses a chain that does not start with a FULL base', () => {
    expect(() => flattenPlan(chain(4).slice(1), 1)).toThrow(Conflict);
  });

  it('refuses a chain with a broken parent link', () => {
    const broken = chain(4);
    broken[2] = { ...(broken[2] as Increment), parent: 0 };
    expect(() => flattenPlan(broken, 2)).toThrow('increment 2 does not follow 1 in the chain');
  });
});
