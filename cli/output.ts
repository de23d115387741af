/**
 * What the CLI writes on stdout. With `--json`, exactly one JSON document and nothing else (list
 * commands print the array of items, show commands the object); otherwise tables and
 * `label: value` blocks for humans. Secret-looking attributes are masked in both forms: the API
 * never returns secrets, and this makes sure a slip there does not reach a terminal or a log.
 */

/** Output settings from the global options. */
export interface OutputOptions {
  json: boolean;
}

/** One column of a table: its header and how to render a row's cell. */
export interface Column<T> {
  header: string;
  value: (row: T) => string | number | undefined;
}

const SECRET_NAME = /PASSWORD|KEY|SECRET|TOKEN|CREDENTIAL/i;
const MASK = '********';

/** True when an attribute name looks like it holds a secret (`RESTIC_PASSWORD`, `SSH_KEY`...). */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** A copy of `attributes` with the values of secret-looking names replaced by a mask. */
export function maskAttributes(attributes: Record<string, string> | undefined): Record<string, string> {
  const masked: Record<string, string> = {};
  for (const [name, value] of Object.entries(attributes ?? {}))
    masked[name] = isSecretName(name) ? MASK : value;
  return masked;
}

/** Writes one JSON document on stdout. */
export function printJson(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

/** Writes plain lines on stdout (human output). */
export function printLines(lines: readonly string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

/** Renders rows as a left-aligned table with a header line. */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string[] {
  const cells = rows.map((row) => columns.map((column) => cell(column.value(row))));
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((line) => line[i]?.length ?? 0)),
  );
  const render = (line: readonly string[]) =>
    line
      .map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [render(columns.map((column) => column.header)), ...cells.map(render)];
}

/** Renders `label: value` pairs, labels aligned; undefined values are left out. */
export function formatDetails(pairs: readonly (readonly [string, string | number | undefined])[]): string[] {
  const shown = pairs.filter(([, value]) => value !== undefined && value !== '');
  const width = Math.max(0, ...shown.map(([label]) => label.length));
  return shown.map(([label, value]) => `${`${label}:`.padEnd(width + 2)}${value}`);
}

function cell(value: string | number | undefined): string {
  return value === undefined ? '-' : String(value).replace(/\s+/g, ' ');
}

/**
 * Prints a list: the array itself with `--json`, else a table (or `empty` when there are no rows).
 */
export function printList<T>(
  options: OutputOptions,
  items: readonly T[],
  columns: readonly Column<T>[],
  empty: string,
): void {
  if (options.json) printJson(items);
  else printLines(items.length === 0 ? [empty] : formatTable(items, columns));
}

/** Human-readable byte count: `0 B`, `1.5 KiB`, `10.0 GiB`. */
export function formatBytes(bytes: number | undefined): string | undefined {
  if (bytes === undefined) return undefined;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
