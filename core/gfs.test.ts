import { describe, expect, it } from 'vitest';
import {
  type GfsPolicy,
  gfsPicks,
  gfsPlan,
  periodKey,
  type RetentionImage,
  type RetentionPoint,
} from './gfs.ts';

const NONE: GfsPolicy = { last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 };
const policy = (p: Partial<GfsPolicy>): GfsPolicy => ({ ...NONE, ...p });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** One point every `stepMs` from `from` to `to` (inclusive), ids 1, 2, 3... */
function series(from: string, to: string, stepMs: number): RetentionPoint[] {
  const points: RetentionPoint[] = [];
  for (let t = Date.parse(from), id = 1; t <= Date.parse(to); t += stepMs, id++) {
    points.push({ id, at: new Date(t).toISOString() });
  }
  return points;
}
const fulls = (points: readonly RetentionPoint[]): RetentionImage[] =>
  points.map((p) => ({ imageId: p.id, points: [p] }));
const daysOf = (points: readonly RetentionPoint[], ids: Iterable<number>) => {
  const byId = new Map(points.map((p) => [p.id, p.at.slice(0, 10)]));
  return [...ids].map((id) => byId.get(id)).sort();
};

describe('periodKey (UTC)', () => {
  it.each([
    ['2026-12-06T23:59:59Z', 'hourly', '2026-12-06T23'],
    ['2026-12-06T00:00:00Z', 'daily', '2026-12-06'],
    ['2026-12-06T12:00:00Z', 'weekly', '2026-W49'],
    // ISO weeks across the turn of a year.
    ['2021-01-03T12:00:00Z', 'weekly', '2020-W53'],
    ['2024-12-30T12:00:00Z', 'weekly', '2025-W01'],
    ['2026-01-01T00:00:00Z', 'weekly', '2026-W01'],
    ['2026-02-28T12:00:00Z', 'monthly', '2026-02'],
    ['2026-12-31T23:00:00Z', 'yearly', '2026'],
  ] as const)('%s %s is %s', (at, period, key) => {
    expect(periodKey(period, new Date(at))).toBe(key);
  });
});

describe('gfsPicks: the newest backup of each of the last N periods that hold one', () => {
  it('three years of daily backups: 7 daily, 4 weekly, 12 monthly, 3 yearly', () => {
    const points = series('2024-01-01T02:00:00Z', '2026-12-06T02:00:00Z', DAY);
    const kept = gfsPicks(points, policy({ daily: 7, weekly: 4, monthly: 12, yearly: 3 }));
    expect(daysOf(points, kept)).toEqual(
      [
        // yearly: the newest of 2024 and 2025 (2026's is the newest backup)
        '2024-12-31',
        '2025-12-31',
        // monthly: the newest of each month back to January 2026 (December's and November's
        // are among the daily ones)
        '2026-01-31',
        '2026-02-28',
        '2026-03-31',
        '2026-04-30',
        '2026-05-31',
        '2026-06-30',
        '2026-07-31',
        '2026-08-31',
        '2026-09-30',
        '2026-10-31',
        // weekly: the Sundays closing ISO weeks 46, 47, 48 (week 49's is the newest)
        '2026-11-15',
        '2026-11-22',
        '2026-11-29',
        // daily: the last seven days
        '2026-11-30',
        '2026-12-01',
        '2026-12-02',
        '2026-12-03',
        '2026-12-04',
        '2026-12-05',
        '2026-12-06',
      ].sort(),
    );
  });

  it('several backups in a day: the day keeps its newest', () => {
    const points: RetentionPoint[] = [
      { id: 1, at: '2026-12-05T01:00:00Z' },
      { id: 2, at: '2026-12-05T13:00:00Z' },
      { id: 3, at: '2026-12-06T01:00:00Z' },
      { id: 4, at: '2026-12-06T13:00:00Z' },
    ];
    expect([...gfsPicks(points, policy({ daily: 2 }))].sort()).toEqual([2, 4]);
  });

  it('hourly backups for three days: 24 hourly and 3 daily', () => {
    const points = series('2026-12-04T00:30:00Z', '2026-12-06T23:30:00Z', HOUR);
    const kept = gfsPicks(points, policy({ hourly: 24, daily: 3 }));
    const times = points.filter((p) => kept.has(p.id)).map((p) => p.at);
    expect(times).toHaveLength(26);
    expect(times.slice(0, 2)).toEqual(['2026-12-04T23:30:00.000Z', '2026-12-05T23:30:00.000Z']);
    expect(times[2]).toBe('2026-12-06T00:30:00.000Z');
  });

  it('KEEP_LAST adds the newest N, whatever their periods', () => {
    const points = series('2026-12-06T00:00:00Z', '2026-12-06T05:00:00Z', HOUR);
    expect([...gfsPicks(points, policy({ last: 2, daily: 1 }))].sort()).toEqual([5, 6]);
    expect([...gfsPicks(points, policy({ last: 3 }))].sort()).toEqual([4, 5, 6]);
  });

  it('counts periods back from the newest backup: a VM no longer backed up keeps what it had', () => {
    const points = series('2025-01-01T02:00:00Z', '2025-03-01T02:00:00Z', DAY);
    const kept = gfsPicks(points, policy({ daily: 3, monthly: 2 }));
    // March's newest is the newest backup; February's is among the daily ones: January goes,
    // however long ago 2025-03-01 is.
    expect(daysOf(points, kept)).toEqual(['2025-02-27', '2025-02-28', '2025-03-01']);
  });
});

describe('gfsPlan over full backups', () => {
  it('removes every image the rules do not keep; no rule keeps everything', () => {
    const points = series('2026-11-01T02:00:00Z', '2026-12-06T02:00:00Z', DAY);
    const plan = gfsPlan(fulls(points), policy({ daily: 5 }));
    expect(plan.removeImages).toHaveLength(points.length - 5);
    expect(plan.flatten).toEqual([]);
    expect(gfsPlan(fulls(points), NONE).removeImages).toEqual([]);
  });

  it('applied after every daily backup for two years, keeps what one pass over it all keeps', () => {
    const rules = policy({ daily: 7, weekly: 5, monthly: 6, yearly: 2 });
    const history = series('2025-01-01T02:00:00Z', '2026-12-06T02:00:00Z', DAY);
    let held: RetentionImage[] = [];
    for (const point of history) {
      held.push({ imageId: point.id, points: [point] });
      const plan = gfsPlan(held, rules);
      held = held.filter((i) => !plan.removeImages.includes(i.imageId));
    }
    const once = gfsPlan(fulls(history), rules);
    expect(held.map((i) => i.imageId).sort((a, b) => a - b)).toEqual([...once.kept].sort((a, b) => a - b));
    // 7 days, ISO weeks 45 to 48, July to October, and 2025's last day.
    expect(held.length).toBe(7 + 4 + 4 + 1);
  });
});

describe('gfsPlan over increment chains: kept whole or flattened, never broken', () => {
  it('flattens a chain up to its oldest kept point and keeps the points after it', () => {
    const chain: RetentionImage = {
      imageId: 10,
      points: series('2026-11-30T02:00:00Z', '2026-12-06T02:00:00Z', DAY),
    };
    const plan = gfsPlan([chain], policy({ daily: 2 }));
    expect(plan.flatten).toEqual([{ imageId: 10, keepFrom: 6 }]);
    expect([...plan.kept].sort()).toEqual([6, 7]);
  });

  it('tells apart chains that number their points alike (each chain counts 0, 1, 2...)', () => {
    const chain = (imageId: number, from: string): RetentionImage => ({
      imageId,
      points: series(from, new Date(Date.parse(from) + 2 * DAY).toISOString(), DAY).map((p) => ({
        ...p,
        id: p.id - 1,
      })),
    });
    // Two old chains, each points 0..2; only the newest day is kept.
    const plan = gfsPlan(
      [chain(1, '2026-11-01T02:00:00Z'), chain(2, '2026-12-04T02:00:00Z')],
      policy({ daily: 1 }),
    );
    expect(plan.removeImages).toEqual([1]);
    expect(plan.flatten).toEqual([{ imageId: 2, keepFrom: 2 }]);
  });

  it('keeps the points between two picks, and removes a chain with no pick', () => {
    const old: RetentionImage = {
      imageId: 1,
      points: series('2026-10-01T02:00:00Z', '2026-10-03T02:00:00Z', DAY),
    };
    const chain: RetentionImage = {
      imageId: 2,
      points: series('2026-11-01T02:00:00Z', '2026-12-06T02:00:00Z', DAY).map((p) => ({
        ...p,
        id: p.id + 100,
      })),
    };
    const plan = gfsPlan([old, chain], policy({ daily: 1, monthly: 2 }));
    expect(plan.removeImages).toEqual([1]);
    // November's newest (day 30, id 130) and December 6 (id 136) are picked: 130..136 stay.
    expect(plan.flatten).toEqual([{ imageId: 2, keepFrom: 130 }]);
    expect([...plan.kept].sort()).toEqual([130, 131, 132, 133, 134, 135, 136]);
  });

  it('a year of weekly chains with daily increments, applied after each backup: every pick survives, chains stay whole', () => {
    const rules = policy({ daily: 7, weekly: 4, monthly: 3 });
    const history = series('2026-01-05T02:00:00Z', '2026-12-06T02:00:00Z', DAY);
    let held: { imageId: number; points: RetentionPoint[] }[] = [];
    for (const point of history) {
      // A new chain every Monday; the other days are increments of the current chain.
      const monday = new Date(point.at).getUTCDay() === 1;
      const current = held.at(-1);
      if (monday || !current) held.push({ imageId: point.id, points: [point] });
      else current.points.push(point);
      const plan = gfsPlan(held, rules);
      held = held.filter((i) => !plan.removeImages.includes(i.imageId));
      for (const { imageId, keepFrom } of plan.flatten) {
        const image = held.find((i) => i.imageId === imageId);
        if (!image) throw new Error(`flatten of an image not held: ${imageId}`);
        // The merged base is the point kept, holding the disks as they were then.
        image.points = image.points.slice(image.points.findIndex((p) => p.id === keepFrom));
      }
      const left = new Set(held.flatMap((i) => i.points.map((p) => p.id)));
      for (const id of gfsPicks(
        held.flatMap((i) => i.points),
        rules,
      ))
        expect(left.has(id)).toBe(true);
    }
    // Each chain held is one week's points from its base on, days in order without a gap.
    for (const image of held) {
      const days = image.points.map((p) => Date.parse(p.at) / DAY);
      expect(days).toEqual(days.map((_, i) => (days[0] as number) + i));
    }
    // The oldest pick is October's newest (a Saturday): its week's chain was flattened into it.
    expect(held[0]?.points[0]?.at).toBe('2026-10-31T02:00:00.000Z');
    expect(held[0]?.points).toHaveLength(2);
  });
});
