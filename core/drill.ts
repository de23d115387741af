/**
 * Restore drills (`lifeboat image verify IMAGEID --restore`): an image restored into a runner's
 * scratch space, each disk file checked against the sha256 recorded at backup time, the VM
 * defined under a throwaway name with no NIC, started, seen running, then removed with every
 * file. The rules both sides share: the throwaway domain name (built by the runner from the
 * drill id, never taken from a message), which domains are drills (the inventory skips them),
 * the points a drill restores and the sums it checks them against. Pure: no I/O.
 */
import { restoreChain } from './chain.ts';
import { ValidationError } from './errors.ts';
import type { Image } from './model.ts';
import { recordedSums } from './recorded-sums.ts';
import { cleanTemplate } from './template.ts';
import { leastRecentlyVerified } from './verify-turn.ts';

/** Prefix of every drill domain: `lifeboat-drill-<drillId>`. */
export const DRILL_DOMAIN_PREFIX = 'lifeboat-drill-';

/** The throwaway domain name of drill `drillId` (a positive integer). */
export function drillDomainName(drillId: number): string {
  if (!Number.isSafeInteger(drillId) || drillId < 1)
    throw new ValidationError(`drillId: must be a positive integer (got ${String(drillId)})`);
  return `${DRILL_DOMAIN_PREFIX}${drillId}`;
}

/**
 * The template a drill defines: the stored one renamed to the drill's throwaway name (whatever
 * name the stored template or a message holds), without its UUID, and with every NIC removed
 * (NO_NIC): a drill VM must never reach a network or clash with the VM it was backed up from.
 */
export function drillTemplate(template: string, drillId: number): string {
  return cleanTemplate(template, { name: drillDomainName(drillId), noNic: true });
}

/** The drill id of a drill domain's name, or undefined when `name` is not one. */
export function drillIdOfDomain(name: string): number | undefined {
  const match = /^lifeboat-drill-([1-9][0-9]{0,15})$/.exec(name);
  if (!match) return undefined;
  const id = Number(match[1]);
  return Number.isSafeInteger(id) ? id : undefined;
}

/** One stored backup a drill reads: its files by disk, each with the sha256 recorded (or null). */
export interface DrillPoint {
  backupId: string;
  disks: { id: number; file: string; sha256: string | null }[];
}

/**
 * The stored backups a drill of `image` reads, oldest first: its FULL, then each increment of
 * its chain (every disk the image holds). A drill restores the latest point from all of them;
 * each file is checked against the sha256 recorded when it was stored.
 */
export function drillPoints(image: Pick<Image, 'id' | 'source' | 'disks' | 'increments'>): DrillPoint[] {
  const diskIds = image.disks.map((d) => d.id);
  if (diskIds.length === 0) throw new ValidationError(`image ${image.id} holds no disk to restore`);
  const chain = restoreChain(image, diskIds);
  return [chain.full, ...chain.increments].map((point) => {
    const sums = recordedSums(image, point.backupId) ?? {};
    return {
      backupId: point.backupId,
      disks: point.disks.map((d) => ({ ...d, sha256: sums[d.file] ?? null })),
    };
  });
}

/**
 * The images a scheduled drill restores this run: `count` of the READY ones with a template, by
 * turn (core/verify-turn.ts).
 */
export function drillSample<I extends Pick<Image, 'id' | 'state' | 'template' | 'verifiedAt'>>(
  images: readonly I[],
  count: number,
): I[] {
  return leastRecentlyVerified(
    images.filter((image) => image.state === 'READY' && image.template !== ''),
    count,
  );
}

/**
 * Which points a drill starts a VM from (indexes into the points, oldest first): every one, or
 * with `latestOnly` the last. Each point's files are checked either way.
 */
export function bootedPoints(count: number, latestOnly: boolean): number[] {
  if (count < 1) return [];
  return latestOnly ? [count - 1] : Array.from({ length: count }, (_, i) => i);
}

/**
 * Why a restored file does not match what was recorded at backup time (naming the disk, the
 * file and the backup), or undefined when it matches or nothing was recorded.
 */
export function sumMismatch(
  disk: { id: number; file: string; sha256: string | null },
  backupId: string,
  actual: string,
): string | undefined {
  if (disk.sha256 === null || disk.sha256 === actual) return undefined;
  return `disk ${disk.id}: ${disk.file} of backup ${backupId} restored with sha256 ${actual}, not the ${disk.sha256} recorded at backup time`;
}
