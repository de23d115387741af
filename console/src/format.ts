/** Display helpers shared by the pages. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes in binary units, as the CLI shows them (`1.5 GiB`). */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}

/** An ISO-8601 date in the browser's locale, or `-`. */
export function formatDate(iso: string | undefined): string {
  if (!iso) return '-';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** BACKUP_CONFIG in one line, keys sorted (`KEEP_LAST=3, MODE=INCREMENT`), or `-` when empty. */
export function configSummary(config: Record<string, string> | undefined): string {
  // Sorted: the API answers the keys in no stable order.
  const entries = Object.entries(config ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(', ') : '-';
}

/** A progress reading: bytes done at a time (epoch ms). */
export interface ProgressSample {
  bytes: number;
  at: number;
}

/**
 * Rate (bytes/s) between two readings, and the seconds left at that rate to reach `total`;
 * undefined when nothing moved (no rate to extrapolate from).
 */
export function rateAndEta(
  before: ProgressSample,
  after: ProgressSample,
  total: number,
): { rate: number; etaSeconds: number | undefined } | undefined {
  const seconds = (after.at - before.at) / 1000;
  const moved = after.bytes - before.bytes;
  if (seconds <= 0 || moved <= 0) return undefined;
  const rate = moved / seconds;
  return { rate, etaSeconds: total > after.bytes ? Math.ceil((total - after.bytes) / rate) : undefined };
}

/** Seconds as `1 h 2 min`, `3 min 4 s` or `5 s`. */
export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}
