/**
 * Rebuilding a datastore's images from its catalog (`lifeboat datastore import`): which backups
 * make which image, read from what the datastore stores and nothing else. Pure: the Lambda that
 * commits the import reads and writes the records.
 *
 * The rules, from what the drivers store (drivers/datastore/*.ts, drivers/disk/*.ts):
 * - the backups of one image share its id (restic tag `image:<id>`, rsync `.complete`); a backup
 *   with none is an image of its own;
 * - a backup whose disk files are all `disk.<id>.inc<N>.…` is point N of an increment chain, on
 *   parent N-1; any other backup (`disk.<id>.raw`, `.qcow2`, `.rbd`, a flattened base) is a FULL;
 * - an image's chain starts at its newest FULL (after a flatten, the new base is stored after the
 *   old one, which is removed once recorded), as point (lowest N) - 1, and follows N without a
 *   gap; a point past a gap, or increments with no FULL, cannot be restored and are skipped;
 * - any other FULL of the same image id becomes an image of its own, so nothing is lost;
 * - sizes are untrusted: a backup or chain whose sizes add past an exact number (2^53) is
 *   skipped, never written as an image no record could hold.
 */
import type { Image, Increment } from './model.ts';

/** One backup of a catalog, checked (core/contracts/tasks.ts CatalogEntry), its template resolved. */
export interface CatalogBackup {
  vmId: number;
  backupId: string;
  imageId: number | null;
  jobId: number | null;
  time: string;
  files: { name: string; size: number; sha256: string | null }[];
  template: string | null;
}

/** An image to write: everything but its id, owner and record bookkeeping. */
export interface PlannedImage {
  vmId: number;
  /** The image id the datastore recorded, to keep when it is free; null: a new one. */
  preferredId: number | null;
  jobId: number | null;
  mode: Image['mode'];
  source: string;
  size: number;
  disks: Image['disks'];
  template: string;
  increments: Increment[];
  createdAt: string;
  /** Every stored backup the image names. */
  backupIds: string[];
}

export interface ImportPlan {
  images: PlannedImage[];
  /** Images (groups of backups) the control plane already knows: left alone. */
  known: number;
  skipped: { backupId: string; reason: string }[];
}

const DISK_FILE = /^disk\.(\d+)\./;
const INCREMENT_FILE = /^disk\.(\d+)\.inc(\d+)\./;

/** Point N when every file of the backup is an increment file of N; null for a FULL; undefined: mixed. */
function incrementOf(backup: CatalogBackup): number | null | undefined {
  const points = new Set(backup.files.map((f) => INCREMENT_FILE.exec(f.name)?.[2] ?? null));
  if (points.size !== 1) return undefined;
  const [n] = [...points];
  return n === null || n === undefined ? null : Number(n);
}

/** The disks of a backup by the ids their names carry; undefined when a name carries none or twice. */
function disksOf(
  backup: CatalogBackup,
): { id: number; file: string; size: number; sha256: string | null }[] | undefined {
  const disks = backup.files.map((f) => ({
    id: Number(DISK_FILE.exec(f.name)?.[1] ?? Number.NaN),
    file: f.name,
    size: f.size,
    sha256: f.sha256,
  }));
  if (disks.some((d) => !Number.isSafeInteger(d.id))) return undefined;
  if (new Set(disks.map((d) => d.id)).size !== disks.length) return undefined;
  return disks.sort((a, b) => a.id - b.id);
}

const iso = (time: string) => new Date(time).toISOString();
const sum = (files: readonly { size: number }[]) => files.reduce((s, f) => s + f.size, 0);

/**
 * The images to write for `catalog`, given the stored backups the control plane already names
 * (`known`): a group of backups of which any is known is left alone, whole.
 */
export function planImport(catalog: readonly CatalogBackup[], known: ReadonlySet<string>): ImportPlan {
  const plan: ImportPlan = { images: [], known: 0, skipped: [] };
  const groups = new Map<string, CatalogBackup[]>();
  for (const b of catalog) {
    const key = `${b.vmId}/${b.jobId ?? ''}/${b.imageId ?? `backup:${b.backupId}`}`;
    groups.set(key, [...(groups.get(key) ?? []), b]);
  }
  for (const group of groups.values()) {
    if (group.some((b) => known.has(b.backupId))) {
      plan.known++;
      continue;
    }
    const fulls: CatalogBackup[] = [];
    const points = new Map<number, CatalogBackup>();
    for (const b of group) {
      const n = incrementOf(b);
      if (!disksOf(b)) plan.skipped.push({ backupId: b.backupId, reason: 'a file name carries no disk id' });
      else if (!Number.isSafeInteger(sum(b.files)))
        plan.skipped.push({ backupId: b.backupId, reason: 'its file sizes add to no exact byte count' });
      else if (n === undefined)
        plan.skipped.push({ backupId: b.backupId, reason: 'mixes FULL and increment files' });
      else if (n === null) fulls.push(b);
      else if (n === 0 || points.has(n))
        plan.skipped.push({ backupId: b.backupId, reason: `a second point ${n}` });
      else points.set(n, b);
    }
    fulls.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    const base = points.size > 0 ? fulls.pop() : fulls.shift();
    if (!base) {
      for (const b of points.values())
        plan.skipped.push({ backupId: b.backupId, reason: 'an increment whose FULL is not stored' });
      continue;
    }
    plan.images.push(
      chainImage(
        base,
        [...points].sort(([a], [b]) => a - b),
        plan,
      ),
    );
    // Other FULLs of the same image id (a flatten's leftovers): each an image of its own.
    for (const full of fulls) plan.images.push({ ...chainImage(full, [], plan), preferredId: null });
  }
  return plan;
}

/** The image of `base` and the increments that follow it without a gap. */
function chainImage(base: CatalogBackup, points: [number, CatalogBackup][], plan: ImportPlan): PlannedImage {
  const disks = disksOf(base) ?? [];
  const image: PlannedImage = {
    vmId: base.vmId,
    preferredId: base.imageId,
    jobId: base.jobId,
    mode: points.length > 0 ? 'INCREMENT' : 'FULL',
    source: base.backupId,
    size: sum(base.files),
    disks: disks.map((d) => ({
      id: d.id,
      size: d.size,
      // Not stored: the file's size is what a raw disk is, and a lower bound for qcow2.
      virtualSize: d.size,
      format: d.file.endsWith('.qcow2') ? 'qcow2' : 'raw',
      file: d.file,
      ...(d.sha256 && { sha256: d.sha256 }),
    })),
    template: base.template ?? '',
    increments: [],
    createdAt: iso(base.time),
    backupIds: [base.backupId],
  };
  if (points.length === 0) return image;
  let last = (points[0]?.[0] ?? 1) - 1;
  image.increments.push({
    id: last,
    type: 'FULL',
    source: base.backupId,
    size: image.size,
    date: iso(base.time),
    disks: disks.map((d) => ({ id: d.id, file: d.file, size: d.size })),
  });
  for (const [n, point] of points) {
    const size = sum(point.files);
    if (n !== last + 1) {
      plan.skipped.push({ backupId: point.backupId, reason: `point ${n} follows no stored point ${n - 1}` });
      continue;
    }
    // The points after it then follow a gap: the chain ends here, as at a missing point.
    if (!Number.isSafeInteger(image.size + size)) {
      plan.skipped.push({ backupId: point.backupId, reason: "the chain's sizes add to no exact byte count" });
      continue;
    }
    image.increments.push({
      id: n,
      parent: last,
      type: 'INCREMENT',
      source: point.backupId,
      size,
      date: iso(point.time),
      disks: (disksOf(point) ?? []).map((d) => ({ id: d.id, file: d.file, size: d.size })),
    });
    image.size += size;
    image.backupIds.push(point.backupId);
    last = n;
  }
  return image;
}

/**
 * The libvirt domain UUID a stored template names (canonical: lower case, dashed), or null: the
 * VM's identity, which a fresh control plane's VM ids do not keep.
 */
export function templateUuid(template: string): string | null {
  const m =
    /<uuid>\s*([0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12})\s*<\/uuid>/.exec(
      template,
    );
  if (!m) return null;
  const hex = (m[1] as string).replaceAll('-', '').toLowerCase();
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-');
}
