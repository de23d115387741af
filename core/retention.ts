/**
 * KEEP_LAST retention: which full backups to remove (upstream `remove_last`) and, for an
 * increment chain, which oldest increments to merge into a new base (flatten).
 */
import { Conflict, ValidationError } from './errors.ts';
import type { Increment } from './model.ts';

function checkKeepLast(keepLast: number | null): void {
  if (keepLast !== null && !(Number.isInteger(keepLast) && keepLast >= 0)) {
    throw new ValidationError(`KEEP_LAST must be a non-negative integer (got ${keepLast})`);
  }
}

/**
 * Image ids to remove so that only the last `keepLast` backups remain, oldest first.
 * `backupIds` is the VM's BACKUP_IDS, oldest first. null or 0 keeps every backup.
 */
export function removeLast(backupIds: readonly number[], keepLast: number | null): number[] {
  checkKeepLast(keepLast);
  if (!keepLast || backupIds.length <= keepLast) return [];
  return backupIds.slice(0, backupIds.length - keepLast);
}

/** What a flatten does to an increment chain; see {@link flattenPlan}. */
export interface FlattenPlan {
  /** The increment that becomes the chain's new FULL base (its disks as of that increment). */
  newBase: number;
  /** Ids merged into the new base, oldest first: the old base, the increments after it, newBase. */
  merge: number[];
  /** Restore points that disappear (every merged id but newBase), oldest first. */
  removed: number[];
  /** Ids left in the chain afterwards, newBase first. */
  keep: number[];
}

/**
 * With KEEP_LAST=k on an increment chain, at most k restore points (the base and the
 * increments) remain: when there are more, the oldest ones are merged into the first point
 * kept, which becomes the new FULL base. Returns null when nothing is to be done.
 * Throws Conflict when the chain is malformed (no FULL base first, or a broken parent link),
 * since flattening a broken chain would lose data.
 */
export function flattenPlan(increments: readonly Increment[], keepLast: number | null): FlattenPlan | null {
  checkKeepLast(keepLast);
  const chain = [...increments].sort((a, b) => a.id - b.id);
  const [base] = chain;
  if (base === undefined) return null;
  if (base.type !== 'FULL')
    throw new Conflict(`increment chain starts with ${base.type} ${base.id}, not FULL`);
  for (let i = 1; i < chain.length; i++) {
    const inc = chain[i] as Increment;
    const previous = chain[i - 1] as Increment;
    if (inc.type !== 'INCREMENT' || (inc.parent !== undefined && inc.parent !== previous.id)) {
      throw new Conflict(`increment ${inc.id} does not follow ${previous.id} in the chain`);
    }
  }
  if (!keepLast || chain.length <= keepLast) return null;
  const ids = chain.map((i) => i.id);
  const cut = ids.length - keepLast;
  const newBase = ids[cut] as number;
  return { newBase, merge: ids.slice(0, cut + 1), removed: ids.slice(0, cut), keep: ids.slice(cut) };
}
