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
