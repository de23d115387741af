/**
 * Datastore quotas of users and groups, as OpenNebula's DATASTORE quota: `SIZE` (MiB written to
 * backup datastores) and `IMAGES` (backup images held), for one datastore or for all of them.
 * Pure: the rules, the keys of the counters items and the numbers of a refusal.
 *
 * Every (user or group, datastore or all) pair has one entry with its usage and limits. A limit
 * of -1 (or never set) is unlimited, and so is every entry until an admin sets one: a deployment
 * has no default quota (OpenNebula's default quotas are unlimited too until set). A limit below
 * the usage is allowed: nothing more is admitted until the usage falls under it.
 *
 * DynamoDB conditions cannot add, so an entry also keeps its *room* (limit minus usage, or
 * {@link UNLIMITED_ROOM} minus usage when unlimited): a charge is one conditional update
 * `room >= charge`, `room -= charge, used += charge`, which two racing backups cannot both pass.
 */
import { ADMIN_GROUP } from './accounts.ts';
import { type BackupEstimate, toMiB } from './backup-estimate.ts';
import { ValidationError } from './errors.ts';
import type { Image } from './model.ts';

/** A limit that admits anything. */
export const UNLIMITED = -1;
/** Room of an unlimited entry before its usage: far beyond any charge, exact in a double. */
export const UNLIMITED_ROOM = 2 ** 50;

/** Whose quota: a user's or a group's. */
export type QuotaOwner = { kind: 'user' | 'group'; name: string };
/** One datastore's entry, or the entry for all datastores together. */
export type QuotaScope = number | 'all';

/** What one entry holds (MiB and images); limits -1 = unlimited. */
export interface QuotaEntry {
  datastore: QuotaScope;
  size: { used: number; limit: number };
  images: { used: number; limit: number };
}

/** What a backup (or its settlement, or a release) charges: MiB and images, both may be negative. */
export interface Charge {
  sizeMiB: number;
  images: number;
}

/** The counters item of an entry: `quota:user:alice:ds:100`, `quota:group:web:ds:all`. */
export function quotaKey(owner: QuotaOwner, scope: QuotaScope): string {
  return `quota:${owner.kind}:${owner.name}:ds:${scope}`;
}

/** The four entries a backup of `owner:group` to datastore `datastoreId` counts against. */
export function chargedKeys(user: string, group: string, datastoreId: number): string[] {
  const owners: QuotaOwner[] = [
    { kind: 'user', name: user },
    { kind: 'group', name: group },
  ];
  return owners.flatMap((o) => [quotaKey(o, datastoreId), quotaKey(o, 'all')]);
}

/** The room an entry has with `limit` (-1 unlimited) and `used`. */
export function roomOf(limit: number, used: number): number {
  return (limit < 0 ? UNLIMITED_ROOM : limit) - used;
}

/** Whether an entry admits `charge` (what the conditional update checks). */
export function admits(entry: QuotaEntry, charge: Charge): boolean {
  const fits = (q: { used: number; limit: number }, n: number) => n <= 0 || roomOf(q.limit, q.used) >= n;
  return fits(entry.size, charge.sizeMiB) && fits(entry.images, charge.images);
}

/** The refusal of `charge` by `entry` of `owner`, with the numbers; null when it fits. */
export function refusal(owner: QuotaOwner, entry: QuotaEntry, charge: Charge): string | null {
  if (admits(entry, charge)) return null;
  const where = entry.datastore === 'all' ? 'all datastores' : `datastore ${entry.datastore}`;
  const parts: string[] = [];
  const { size, images } = entry;
  if (charge.sizeMiB > 0 && roomOf(size.limit, size.used) < charge.sizeMiB) {
    parts.push(`SIZE ${size.used} of ${size.limit} MiB used, this backup needs about ${charge.sizeMiB} MiB`);
  }
  if (charge.images > 0 && roomOf(images.limit, images.used) < charge.images) {
    parts.push(`IMAGES ${images.used} of ${images.limit} used, this backup makes ${charge.images} more`);
  }
  return `quota exceeded: ${owner.kind} ${owner.name} on ${where}: ${parts.join('; ')}`;
}

/** Limits as set: `SIZE=MiB`, `IMAGES=N` (-1 = unlimited); absent keys are left as they are. */
export interface QuotaLimits {
  size?: number;
  images?: number;
}

/** Parse `SIZE=1024 IMAGES=10` pairs (any key case); 400 on anything else. */
export function parseQuotaPairs(pairs: Readonly<Record<string, string | number>>): QuotaLimits {
  const out: QuotaLimits = {};
  for (const [rawKey, rawValue] of Object.entries(pairs)) {
    const key = rawKey.toUpperCase();
    if (key !== 'SIZE' && key !== 'IMAGES') {
      throw new ValidationError(`quota: unknown key ${JSON.stringify(rawKey)} (SIZE, IMAGES)`);
    }
    const text = String(rawValue).trim();
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(value) || value < UNLIMITED) {
      throw new ValidationError(`quota: ${key} must be a whole number, or -1 for unlimited`);
    }
    out[key === 'SIZE' ? 'size' : 'images'] = value;
  }
  return out;
}

/**
 * What queueing a backup estimated at `estimate` reserves: its bytes in MiB, and one image unless
 * it extends a chain. A backup Admit will refuse (no estimate) reserves its image, nothing more.
 */
export function backupCharge(estimate: BackupEstimate | null): Charge {
  if (!estimate) return { sizeMiB: 0, images: 1 };
  return { sizeMiB: toMiB(estimate.bytes), images: estimate.kind === 'FULL' ? 1 : 0 };
}

/** Whether objects of `owner:group` count against no quota (OpenNebula: oneadmin and its group). */
export function exempt(owner: string, group: string): boolean {
  return owner === 'admin' || group === ADMIN_GROUP;
}

/** Whose entries a charge was taken from: an owner and group on one datastore. */
export interface ChargedTo {
  user: string;
  group: string;
  datastoreId: number;
}

/** Per counters item, the sum of the charges on it (items charged nothing left out). */
export function chargesByKey(charges: readonly (readonly [readonly string[], Charge])[]): [string, Charge][] {
  const sums = new Map<string, Charge>();
  for (const [keys, charge] of charges) {
    for (const key of keys) {
      const sum = sums.get(key) ?? { sizeMiB: 0, images: 0 };
      sums.set(key, { sizeMiB: sum.sizeMiB + charge.sizeMiB, images: sum.images + charge.images });
    }
  }
  return [...sums].filter(([, c]) => c.sizeMiB !== 0 || c.images !== 0);
}

const keysOf = (to: ChargedTo) => chargedKeys(to.user, to.group, to.datastoreId);
const negated = (charge: Charge): Charge => ({ sizeMiB: -charge.sizeMiB, images: -charge.images });

/** The counters changes that give `charge`, taken from `to`'s entries, back. */
export function givenBack(to: ChargedTo, charge: Charge): [string, Charge][] {
  return chargesByKey([[keysOf(to), negated(charge)]]);
}

/**
 * What Commit settles for a backup that reserved `reserved` and wrote `writtenBytes` to `image`:
 * the reservation taken back, and what it really wrote charged (its MiB, and one image when it
 * made the image: a FULL, or a chain's first point) to whoever the image counts against (the
 * reservation's owner for a new image). `recorded` is the image's charge afterwards.
 */
export function settlement(
  reserved: ChargedTo & Charge,
  image: Pick<Image, 'mode' | 'increments' | 'datastoreId' | 'quota'>,
  writtenBytes: number,
): { charges: [string, Charge][]; recorded: NonNullable<Image['quota']> } {
  const target = image.quota ?? { user: reserved.user, group: reserved.group };
  const newImage = image.mode === 'FULL' || image.increments.length <= 1;
  const actual: Charge = { sizeMiB: toMiB(writtenBytes), images: newImage ? 1 : 0 };
  return {
    charges: chargesByKey([
      [keysOf(reserved), negated(reserved)],
      [keysOf({ ...target, datastoreId: image.datastoreId }), actual],
    ]),
    recorded: {
      user: target.user,
      group: target.group,
      sizeMiB: (image.quota?.sizeMiB ?? 0) + actual.sizeMiB,
    },
  };
}
