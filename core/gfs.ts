/**
 * GFS retention (grandfather-father-son) beside KEEP_LAST: KEEP_HOURLY, KEEP_DAILY,
 * KEEP_WEEKLY, KEEP_MONTHLY and KEEP_YEARLY with restic's and Proxmox Backup Server's meaning:
 * for each of the last N periods (hours, days, ISO weeks, months, years, in UTC) that hold a
 * backup, the newest backup of that period is kept. The rules are independent and their union
 * is kept, KEEP_LAST (the newest N backups) included. Periods are counted back from the newest
 * backup, so a VM that stopped being backed up keeps what it had.
 *
 * An increment chain is kept whole or flattened, never broken: its points older than the
 * oldest one kept are merged into that one (the flatten of KEEP_LAST), its points after it
 * stay, and a chain with no point kept goes entirely. Pure.
 */

/** How many of each period to keep; 0 keeps none by that rule. */
export interface GfsPolicy {
  last: number;
  hourly: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

/** The period rules, finest first. */
export const GFS_PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type GfsPeriod = (typeof GFS_PERIODS)[number];

/** One restore point: a FULL backup or one point of an increment chain. */
export interface RetentionPoint {
  id: number;
  /** When it was taken (ISO 8601). */
  at: string;
}

/** A backup image: one FULL (one point) or an increment chain (its base first). */
export interface RetentionImage {
  imageId: number;
  /** Oldest first; the first is the FULL the others build on. */
  points: readonly RetentionPoint[];
}

/** What the rules ask for. */
export interface GfsPlan {
  /** Images none of whose points is kept: removed whole. */
  removeImages: number[];
  /** Chains whose oldest points go: merged into `keepFrom` (the image's own point id), the new base. */
  flatten: { imageId: number; keepFrom: number }[];
  /**
   * Every point left afterwards, by id (the rules' picks and the chain points they hold on to);
   * meaningful across images when their point ids are unique.
   */
  kept: Set<number>;
}

/** Whether any period rule is set (else KEEP_LAST alone applies, as before GFS). */
export function hasPeriodRules(policy: GfsPolicy): boolean {
  return GFS_PERIODS.some((p) => policy[p] > 0);
}

/** The period a time falls in, as a sortable key (UTC). */
export function periodKey(period: GfsPeriod, at: Date): string {
  const y = at.getUTCFullYear();
  const m = pad(at.getUTCMonth() + 1);
  const d = pad(at.getUTCDate());
  switch (period) {
    case 'hourly':
      return `${y}-${m}-${d}T${pad(at.getUTCHours())}`;
    case 'daily':
      return `${y}-${m}-${d}`;
    case 'weekly': {
      const { year, week } = isoWeek(at);
      return `${year}-W${pad(week)}`;
    }
    case 'monthly':
      return `${y}-${m}`;
    case 'yearly':
      return String(y);
  }
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** ISO 8601 week: weeks start on Monday, week 1 holds the year's first Thursday. */
function isoWeek(at: Date): { year: number; week: number } {
  const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  // The Thursday of this week decides the year the week belongs to.
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  return { year: day.getUTCFullYear(), week: Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7) };
}

/** Points newest first (by time, then id for equal times). */
function newestFirst<P extends RetentionPoint>(points: readonly P[]): P[] {
  return [...points].sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || b.id - a.id);
}

/** Ids the rules pick among `points`: the newest `last`, and the newest of each recent period. */
export function gfsPicks(points: readonly RetentionPoint[], policy: GfsPolicy): Set<number> {
  return new Set([...pickedPoints(points, policy)].map((p) => p.id));
}

/** The points (themselves, not their ids) the rules pick. */
function pickedPoints<P extends RetentionPoint>(points: readonly P[], policy: GfsPolicy): Set<P> {
  const ordered = newestFirst(points);
  const picked = new Set(ordered.slice(0, Math.max(0, policy.last)));
  for (const period of GFS_PERIODS) {
    let left = policy[period];
    let previous: string | undefined;
    for (const point of ordered) {
      if (left <= 0) break;
      const key = periodKey(period, new Date(point.at));
      if (key === previous) continue;
      previous = key;
      picked.add(point);
      left--;
    }
  }
  return picked;
}

/**
 * What to remove and flatten so that the images keep what `policy` asks for and no chain is
 * broken. A policy with no rule at all keeps everything. Points are told apart by identity, so
 * each image may number its own (a chain's points are 0, 1, 2...); `kept` holds their ids.
 */
export function gfsPlan(images: readonly RetentionImage[], policy: GfsPolicy): GfsPlan {
  const all = images.flatMap((i) => i.points);
  const keepAll = policy.last <= 0 && !hasPeriodRules(policy);
  const picks: Set<RetentionPoint> = keepAll ? new Set(all) : pickedPoints(all, policy);
  const plan: GfsPlan = { removeImages: [], flatten: [], kept: new Set() };
  for (const image of images) {
    const first = image.points.findIndex((p) => picks.has(p));
    if (first < 0) {
      plan.removeImages.push(image.imageId);
      continue;
    }
    const from = image.points[first] as RetentionPoint;
    if (first > 0) plan.flatten.push({ imageId: image.imageId, keepFrom: from.id });
    for (const point of image.points.slice(first)) plan.kept.add(point.id);
  }
  return plan;
}
