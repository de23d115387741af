/**
 * Parsers for command-line values, for commander's `argParser`. They throw commander's
 * `InvalidArgumentError`, which commander turns into a one-line usage error (exit 2).
 */
import { InvalidArgumentError } from 'commander';

/** An object id: a non-negative integer (`VMID`, `DSID`, `IMAGEID`, `HOSTID`). */
export function parseId(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('Expected a non-negative integer id.');
  const id = Number(value);
  if (!Number.isSafeInteger(id)) throw new InvalidArgumentError('The id is too large.');
  return id;
}

/** An execution id as the API returns it (`"17"`). */
export function parseExecutionId(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,80}$/.test(value))
    throw new InvalidArgumentError('Expected an execution id (letters, digits, - and _).');
  return value;
}

/** A `KEY=VALUE` pair; KEY is a letter then letters, digits or `_`; VALUE may be empty. */
export function parsePair(text: string): [string, string] {
  const match = /^([A-Za-z][A-Za-z0-9_]*)=(.*)$/s.exec(text);
  if (!match?.[1] || match[2] === undefined) {
    throw new InvalidArgumentError(`Expected KEY=VALUE.`);
  }
  return [match[1], match[2]];
}

/**
 * Accumulates `KEY=VALUE` texts into a record (the last value of a key wins): for repeated
 * `--attr` options and for variadic positional arguments alike.
 */
export function collectPair(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const [key, value] = parsePair(text);
  return { ...previous, [key]: value };
}

/** A TCP port, 1 to 65535. */
export function parsePort(value: string): number {
  const port = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw new InvalidArgumentError('Expected a port number (1-65535).');
  return port;
}
