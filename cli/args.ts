/**
 * Parsers for command-line values, for commander's `argParser`. They throw commander's
 * `InvalidArgumentError`, which commander turns into a one-line usage error (exit 2).
 */
import { InvalidArgumentError } from 'commander';
import { GroupName, NAME_PATTERN, NAME_RULE, parseLifetime, RESERVED_GROUP } from '#core/accounts.ts';
import { isOctalPermissions, OCTAL_RULE } from '#core/permissions.ts';

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

/** A user or group name (core/accounts.ts): never `host:1` nor `a/b`. */
export function parseName(value: string): string {
  if (!NAME_PATTERN.test(value)) throw new InvalidArgumentError(`A name ${NAME_RULE}.`);
  return value;
}

/** A token lifetime such as `30d` or `never`: checked here so a typo never reaches the API. */
export function parseExpires(value: string): string {
  try {
    parseLifetime(value, '--expires');
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message.replace(/^--expires: /, ''));
  }
  return value;
}

/** A token's public id, as `lifeboat token list` shows it. */
export function parseTokenId(value: string): string {
  if (!/^[0-9a-f]{16}$/.test(value)) throw new InvalidArgumentError('Expected a token id (16 hex digits).');
  return value;
}

/** `USER`, `USER:GROUP` or `:GROUP` (chown, `host update --owner`): the names it gives. */
export interface OwnerSpec {
  owner?: string;
  group?: string;
}

/** Parses `USER[:GROUP]` or `:GROUP`, each name by the rules of core/accounts.ts. */
export function parseOwnerSpec(value: string): OwnerSpec {
  const match = /^([^:]*)(?::([^:]*))?$/.exec(value);
  const [owner, group] = [match?.[1], match?.[2]];
  if (!match || (owner === '' && !group) || group === '') {
    throw new InvalidArgumentError('Expected USER, USER:GROUP or :GROUP.');
  }
  if (owner && !NAME_PATTERN.test(owner)) throw new InvalidArgumentError(`A user name ${NAME_RULE}.`);
  if (group !== undefined && !GroupName.safeParse(group).success) {
    throw new InvalidArgumentError(
      group === RESERVED_GROUP ? `The group "${RESERVED_GROUP}" is reserved.` : `A group name ${NAME_RULE}.`,
    );
  }
  return { ...(owner ? { owner } : {}), ...(group !== undefined ? { group } : {}) };
}

/** Three octal digits as `onevm chmod` takes them (`640`). */
export function parseOctal(value: string): string {
  if (!isOctalPermissions(value)) throw new InvalidArgumentError(`Permissions ${OCTAL_RULE}.`);
  return value;
}
