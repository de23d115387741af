/**
 * The API token, kept off command lines: `--token-file PATH` and `LIFEBOAT_TOKEN` are the ways
 * in; `--token VALUE` still works (CLI.md) but shows in `ps` and shell history, so it warns.
 * Nothing here ever puts the token itself in a message: errors name the file or the option.
 */
import { readFileSync, statSync } from 'node:fs';
import { UsageError } from './errors.ts';

/** The one stderr line `--token VALUE` costs. */
export const TOKEN_FLAG_WARNING =
  'lifeboat: warning: --token shows the token to every user of this machine (ps, shell history): ' +
  'use --token-file PATH or LIFEBOAT_TOKEN\n';

/** A bearer token: printable ASCII without spaces (what an HTTP header can carry as is). */
const TOKEN = /^[\x21-\x7e]{1,4096}$/;

/**
 * Checks a token from `source` (`--token`, `LIFEBOAT_TOKEN`, a file) and answers it. A bad one
 * is a usage error naming the source only.
 */
export function checkToken(token: string, source: string): string {
  if (!TOKEN.test(token)) {
    throw new UsageError(
      `the token from ${source} is not a valid API token (one line of printable characters)`,
    );
  }
  return token;
}

/**
 * Reads the token of `--token-file PATH`: the file's text without surrounding whitespace (a
 * trailing newline is fine). Refused, like ssh refuses a private key, when the file is open to
 * its group or others: a token anyone may read is a token anyone may use.
 */
export function readTokenFile(path: string): string {
  let mode: number;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new UsageError(`--token-file ${path} is a directory, not a file`);
    mode = stat.mode & 0o777;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`cannot read the token file ${path}: ${reason(error)}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new UsageError(
      `the token file ${path} is open to other users (mode ${mode.toString(8).padStart(4, '0')}): run chmod 600 ${path}`,
    );
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the token file ${path}: ${reason(error)}`);
  }
  const token = text.trim();
  if (token === '') throw new UsageError(`the token file ${path} is empty`);
  return checkToken(token, `--token-file ${path}`);
}

/** The system's reason without the path or anything else the error carries. */
function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return code ?? 'unreadable';
}
