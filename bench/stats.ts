/**
 * The statistics of repeated, interleaved benchmark runs: each contender's runs reduced to a
 * median with its spread, so that one noisy sample can neither pass nor fail a target.
 */
import { median, round } from './measure.ts';

/** Seconds of one contender over its runs: the median, and the spread around it. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** The runs in the order they ran (interleaved with the other contenders'). */
  runs: number[];
}

/** The median, min and max of a non-empty list of seconds (rounded to the centisecond). */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error('spread of nothing');
  return {
    median: round(median(values), 2),
    min: round(Math.min(...values), 2),
    max: round(Math.max(...values), 2),
    runs: values.map((v) => round(v, 2)),
  };
}

/** `a / b` rounded to 3 decimals, as the summaries' ratios are. */
export function ratio(a: number, b: number): number {
  return round(a / b, 3);
}

/**
 * What an increment benchmark reports of its increment, in the summaries' order: its median
 * seconds and their ratio to the FULL's, the bytes the guest changed, the median growth of the
 * repository (`sentBytes`, one per round) and its ratio to them.
 */
export function incrementFigures(m: {
  fullS: number;
  incrementalS: number;
  changedBytes: number;
  sentBytes: readonly number[];
}): {
  incremental_s: number;
  time_ratio: number;
  changed_bytes: number;
  sent_bytes: number;
  bytes_ratio: number;
} {
  const sent = median(m.sentBytes);
  return {
    incremental_s: m.incrementalS,
    time_ratio: round(m.incrementalS / m.fullS, 4),
    changed_bytes: m.changedBytes,
    sent_bytes: sent,
    bytes_ratio: round(sent / m.changedBytes, 3),
  };
}

/**
 * The order of an interleaved benchmark: `repeat` rounds, each running every contender once, in
 * the given order, so that a slow spell of the host falls on all contenders alike.
 */
export function interleave<T extends string>(
  contenders: readonly T[],
  repeat: number,
): { round: number; name: T }[] {
  const out: { round: number; name: T }[] = [];
  for (let round = 1; round <= repeat; round++) for (const name of contenders) out.push({ round, name });
  return out;
}

/** Collects the seconds of named contenders, run after run. */
export class Samples<T extends string> {
  private readonly byName = new Map<T, number[]>();

  add(name: T, seconds: number): void {
    const list = this.byName.get(name) ?? [];
    list.push(seconds);
    this.byName.set(name, list);
  }

  /** The spread of a contender; throws when it never ran. */
  of(name: T): Spread {
    const list = this.byName.get(name);
    if (!list?.length) throw new Error(`no run of ${name}`);
    return spread(list);
  }

  /** `{ name: { min, max } }` for every contender that ran: the spread a summary carries. */
  ranges(): Record<string, { min: number; max: number }> {
    return Object.fromEntries(
      [...this.byName.keys()].map((name) => {
        const { min, max } = this.of(name);
        return [name, { min, max }];
      }),
    );
  }

  /** One log line per contender: its runs, median and spread. */
  describe(): string[] {
    return [...this.byName.keys()].map((name) => {
      const s = this.of(name);
      return `${name}: runs ${s.runs.join(', ')} s; median ${s.median} s (min ${s.min}, max ${s.max})`;
    });
  }
}
