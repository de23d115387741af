/**
 * Datastore driver attributes (DESIGN.md, "Datastore attributes"): what each driver accepts,
 * their defaults, and which are secrets. Values end up in runner argument arrays and in remote
 * paths, so every value is checked against a narrow pattern rather than trusted.
 */
import { ValidationError } from './errors.ts';

export type DriverName = 'restic' | 'rsync';

/** Default folder of the backups on the backup server. */
export const DEFAULT_BASE_PATH = '/var/lib/lifeboat/backups';

/** One attribute problem, named by its path in the request body (`attributes.RESTIC_PASSWORD`). */
export interface AttributeIssue {
  path: string;
  message: string;
}

/** Thrown by checks with the message only; the caller adds the attribute's path. */
class Bad extends Error {}

interface AttributeSpec {
  /** Returns the canonical value or throws {@link Bad}. */
  check(value: string): string;
  required?: boolean;
  default?: string;
}

const HOST_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

function hostname(value: string): string {
  if (value.length > 253 || !HOSTNAME.test(value)) throw new Bad(`not a host name (got "${value}")`);
  return value;
}

/** `host` or `host:port`; IPv6 addresses in brackets (`[::1]:22`). */
function hostPort(value: string): string {
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(value);
  const [host, port] = v6 ? [null, v6[2]] : value.split(/:(?=[^:]*$)/);
  if (host !== null) {
    if (host === undefined || !HOSTNAME.test(host) || host.length > 253) {
      throw new Bad(`must be host or host:port (got "${value}")`);
    }
  }
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    throw new Bad(`port must be 1-65535 (got "${value}")`);
  }
  return value;
}

function userName(value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(value)) throw new Bad(`not a user name (got "${value}")`);
  return value;
}

function intIn(min: number, max: number) {
  return (value: string): string => {
    if (!/^-?\d{1,12}$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new Bad(`must be an integer from ${min} to ${max} (got "${value}")`);
    }
    return String(Number(value));
  };
}

function oneOf(allowed: readonly string[]) {
  return (value: string): string => {
    const v = value.toLowerCase();
    if (!allowed.includes(v)) throw new Bad(`must be one of ${allowed.join(', ')} (got "${value}")`);
    return v;
  };
}

/**
 * An absolute path of only characters that survive a remote shell and sftp's batch parser
 * unquoted, and never an option (it starts with `/`): what a BASE_PATH may hold.
 */
export const REMOTE_PATH = /^\/[A-Za-z0-9._+@/-]*$/;

/** Absolute, no `..`, and only characters that survive a remote shell unquoted (rsync host:path). */
function absolutePath(value: string): string {
  if (value.length > 1024) throw new Bad('must be at most 1024 characters');
  if (!REMOTE_PATH.test(value)) {
    throw new Bad(`must be an absolute path of letters, digits and ._+@/- (got "${value}")`);
  }
  if (value.split('/').some((part) => part === '..' || part === '.')) {
    throw new Bad(`must not contain . or .. components (got "${value}")`);
  }
  const trimmed = value.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  return trimmed;
}

function hostList(value: string): string {
  const hosts = value.split(/[\s,]+/).filter((h) => h !== '');
  if (hosts.length === 0) throw new Bad('must name at least one host');
  for (const h of hosts) hostname(h);
  return hosts.join(' ');
}

function password(value: string): string {
  // restic reads the password file's first line only: a newline would silently cut it.
  if (/[\r\n\0]/.test(value)) throw new Bad('must be one line');
  if (value.length > 1024) throw new Bad('must be at most 1024 characters');
  return value;
}

/** rsync options that neither run a command nor read or write a file of their own. */
const RSYNC_SHORT_FLAGS = 'aSzvHAXrlptgoDhcWxPqs';
const RSYNC_LONG_FLAGS = [
  '--archive',
  '--sparse',
  '--compress',
  '--inplace',
  '--numeric-ids',
  '--hard-links',
  '--acls',
  '--xattrs',
  '--verbose',
  '--checksum',
  '--whole-file',
  '--no-whole-file',
  '--partial',
  '--progress',
  '--one-file-system',
  '--protect-args',
  '--quiet',
];
const RSYNC_VALUED: Record<string, RegExp> = {
  '--bwlimit': /^\d{1,9}[KMGkmg]?$/,
  '--compress-level': /^\d$/,
  '--timeout': /^\d{1,6}$/,
  '--contimeout': /^\d{1,6}$/,
  '--block-size': /^\d{1,9}$/,
};

/**
 * Tokenizes RSYNC_ARGS on whitespace, checks every option against the allow-list and returns
 * the options joined by single spaces. Throws ValidationError saying which option is refused.
 */
export function checkRsyncArgs(value: string): string {
  try {
    return rsyncArgs(value);
  } catch (e) {
    if (e instanceof Bad) throw new ValidationError(e.message);
    throw e;
  }
}

function rsyncArgs(value: string): string {
  const tokens = value.split(/\s+/).filter((t) => t !== '');
  if (tokens.length === 0) throw new Bad('must hold at least one option');
  const allowed = `allowed: -${RSYNC_SHORT_FLAGS}, ${[...RSYNC_LONG_FLAGS, ...Object.keys(RSYNC_VALUED).map((k) => `${k}=N`)].join(', ')}`;
  for (const token of tokens) {
    if (/^-[^-]/.test(token)) {
      for (const letter of token.slice(1)) {
        if (!RSYNC_SHORT_FLAGS.includes(letter))
          throw new Bad(`option "-${letter}" is not allowed; ${allowed}`);
      }
    } else if (token.startsWith('--')) {
      const [name = '', arg] = token.split(/=(.*)/s);
      const pattern = RSYNC_VALUED[name];
      if (pattern) {
        if (arg === undefined || !pattern.test(arg))
          throw new Bad(`option "${token}" has a bad value; ${allowed}`);
      } else if (arg !== undefined || !RSYNC_LONG_FLAGS.includes(name)) {
        throw new Bad(`option "${token}" is not allowed; ${allowed}`);
      }
    } else {
      throw new Bad(`"${token}" is not an option; ${allowed}`);
    }
  }
  return tokens.join(' ');
}

const COMMON: Record<string, AttributeSpec> = {
  BASE_PATH: { check: absolutePath, default: DEFAULT_BASE_PATH },
  BRIDGE_LIST: { check: hostList },
};

const DRIVER_ATTRIBUTES: Record<DriverName, Record<string, AttributeSpec>> = {
  restic: {
    ...COMMON,
    RESTIC_PASSWORD: { check: password, required: true },
    RESTIC_SFTP_SERVER: { check: hostPort },
    RESTIC_SFTP_USER: { check: userName },
    RESTIC_COMPRESSION: { check: oneOf(['off', 'auto', 'max']), default: 'auto' },
    RESTIC_CONNECTIONS: { check: intIn(1, 64), default: '5' },
    RESTIC_BWLIMIT: { check: intIn(1, 1e9) },
    RESTIC_NICE: { check: intIn(-20, 19) },
    RESTIC_IONICE: { check: intIn(0, 7) },
  },
  rsync: {
    ...COMMON,
    RSYNC_HOST: { check: hostPort, required: true },
    RSYNC_USER: { check: userName },
    RSYNC_ARGS: { check: rsyncArgs, default: '-aS' },
  },
};

/** Attributes kept in the secret store and never returned by the API, per driver. */
export const SECRET_ATTRIBUTES: Readonly<Record<DriverName, readonly string[]>> = {
  restic: ['RESTIC_PASSWORD'],
  rsync: [],
};

/** Every attribute name a driver accepts. */
export function attributeNames(driver: DriverName): string[] {
  return Object.keys(DRIVER_ATTRIBUTES[driver]);
}

/**
 * Checks attributes without throwing, for zod refinements. Keys are case-sensitive upper case,
 * as upstream; an empty value counts as absent. `prefix` is put before each attribute's name.
 */
export function attributeIssues(
  driver: DriverName,
  attrs: Readonly<Record<string, string>>,
  prefix = 'attributes.',
): AttributeIssue[] {
  const specs = DRIVER_ATTRIBUTES[driver];
  const issues: AttributeIssue[] = [];
  for (const [key, value] of Object.entries(attrs)) {
    const spec = specs[key];
    if (!spec) {
      issues.push({
        path: `${prefix}${key}`,
        message: `unknown attribute for driver ${driver}; allowed: ${attributeNames(driver).join(', ')}`,
      });
    } else if (value !== '') {
      try {
        spec.check(value);
      } catch (e) {
        if (!(e instanceof Bad)) throw e;
        issues.push({ path: `${prefix}${key}`, message: e.message });
      }
    }
  }
  for (const [key, spec] of Object.entries(specs)) {
    if (spec.required && (attrs[key] === undefined || attrs[key] === '')) {
      issues.push({ path: `${prefix}${key}`, message: 'required' });
    }
  }
  return issues;
}

/**
 * The check a runner makes of the attributes a task hands it, with the same rules as the API:
 * every attribute known to the driver and well-formed (a BASE_PATH with a newline, a leading `-`
 * or `..` never reaches ssh, sftp or rsync), the required ones present. Secret attributes are not
 * expected here: they come from the datastore's secret, not from the task. Throws
 * ValidationError `attributes.<KEY>: <problem>` on the first problem.
 */
export function checkTaskAttributes(driver: DriverName, attrs: Readonly<Record<string, string>>): void {
  const secretNames = SECRET_ATTRIBUTES[driver];
  const [first] = attributeIssues(driver, attrs).filter(
    (issue) => !(issue.message === 'required' && secretNames.some((n) => issue.path === `attributes.${n}`)),
  );
  if (first) throw new ValidationError(`${first.path}: ${first.message}`);
}

/**
 * Validates a driver's attributes and returns them canonical, defaults filled in and empty
 * values dropped. Throws ValidationError `attributes.<KEY>: <problem>` on the first problem.
 */
export function validateAttributes(
  driver: DriverName,
  attrs: Readonly<Record<string, string>>,
): Record<string, string> {
  const [first] = attributeIssues(driver, attrs);
  if (first) throw new ValidationError(`${first.path}: ${first.message}`);
  const specs = DRIVER_ATTRIBUTES[driver];
  const out: Record<string, string> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const value = attrs[key];
    if (value !== undefined && value !== '') out[key] = spec.check(value);
    else if (spec.default !== undefined) out[key] = spec.default;
  }
  return out;
}

/** Splits validated attributes into what is stored with the datastore and what goes to the secret store. */
export function splitSecrets(
  driver: DriverName,
  attrs: Readonly<Record<string, string>>,
): { attributes: Record<string, string>; secrets: Record<string, string> } {
  const secretNames = SECRET_ATTRIBUTES[driver];
  const attributes: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  for (const [key, value] of Object.entries(attrs)) {
    if (secretNames.includes(key)) secrets[key] = value;
    else attributes[key] = value;
  }
  return { attributes, secrets };
}

/** Result of {@link mergeAttributes}: the new stored state and the secret-store changes to make. */
export interface MergedAttributes {
  /** Non-secret attributes to store, validated, defaults filled in. */
  attributes: Record<string, string>;
  /** Names of the secrets the datastore has after the update. */
  secretAttributes: string[];
  /** New secret values to write (only those the patch gave). */
  secrets: Record<string, string>;
  /** Secret names the patch removed (empty value); delete them from the store. */
  removedSecrets: string[];
}

/**
 * PATCH semantics for a datastore's attributes: the patch's keys replace the current ones, an
 * empty value removes one (back to its default), the others stay. Secrets are not readable here,
 * so an existing secret counts as present when validating (a required one cannot be removed).
 * Throws ValidationError before anything is decided, so bad input changes nothing.
 */
export function mergeAttributes(
  driver: DriverName,
  current: { attributes: Readonly<Record<string, string>>; secretAttributes: readonly string[] },
  patch: Readonly<Record<string, string>>,
): MergedAttributes {
  const secretNames = SECRET_ATTRIBUTES[driver];
  // A stand-in that passes every secret check; it never leaves this function.
  const placeholder = 'present';
  const candidate: Record<string, string> = { ...current.attributes };
  for (const name of current.secretAttributes) candidate[name] = placeholder;
  for (const [key, value] of Object.entries(patch)) {
    if (value === '') delete candidate[key];
    else candidate[key] = value;
  }
  // Unknown keys given with an empty value would vanish above: check the patch's names too.
  const unknown = Object.keys(patch).find((key) => !(key in DRIVER_ATTRIBUTES[driver]));
  if (unknown !== undefined) {
    throw new ValidationError(
      `attributes.${unknown}: unknown attribute for driver ${driver}; allowed: ${attributeNames(driver).join(', ')}`,
    );
  }
  const valid = validateAttributes(driver, candidate);
  const { attributes } = splitSecrets(driver, valid);
  const secrets: Record<string, string> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (secretNames.includes(key) && value !== '') secrets[key] = valid[key] ?? value;
  }
  return {
    attributes,
    secretAttributes: secretNames.filter((name) => valid[name] !== undefined),
    secrets,
    removedSecrets: secretNames.filter(
      (name) => patch[name] === '' && current.secretAttributes.includes(name),
    ),
  };
}
