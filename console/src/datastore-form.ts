/**
 * The datastore form's rules: attributes typed as `KEY=VALUE` lines (as `lifeboat datastore
 * create --attr` takes them), and the driver's secret attributes, asked apart in password fields
 * and never shown: the API stores them in the secret store and answers only their names.
 */
import type { Datastore } from './api.ts';

/** The attributes each driver keeps secret (core/datastore-attributes.ts SECRET_ATTRIBUTES). */
export const SECRET_ATTRIBUTES: Readonly<Record<Datastore['driver'], readonly string[]>> = {
  restic: ['RESTIC_PASSWORD'],
  rsync: [],
};

/** `KEY=VALUE` lines to attributes, or the first line that is not one (blank lines skipped). */
export function parseAttributeLines(
  text: string,
): { attributes: Record<string, string> } | { problem: string } {
  const attributes: Record<string, string> = {};
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!/^[A-Z][A-Z0-9_]*$/.test(key)) {
      return { problem: `line ${index + 1}: KEY=VALUE with an upper-case KEY (got "${line.slice(0, 40)}")` };
    }
    attributes[key] = line.slice(eq + 1).trim();
  }
  return { attributes };
}

/** A datastore's stored attributes as the form's lines, sorted by key. */
export function attributeLines(attributes: Readonly<Record<string, string>>): string {
  return Object.keys(attributes)
    .sort()
    .map((key) => `${key}=${attributes[key]}`)
    .join('\n');
}

/**
 * The attributes sent: the lines, and each secret typed (left blank on an edit, the stored
 * secret is kept); a secret typed among the lines is refused, as it would show on screen.
 */
export function attributesToSend(
  driver: Datastore['driver'],
  lines: string,
  secrets: Readonly<Record<string, string>>,
): { attributes: Record<string, string> } | { problem: string } {
  const parsed = parseAttributeLines(lines);
  if ('problem' in parsed) return parsed;
  const shown = SECRET_ATTRIBUTES[driver].find((name) => name in parsed.attributes);
  if (shown) return { problem: `${shown} is a secret: type it in its own field, not among the attributes` };
  const typed = Object.fromEntries(Object.entries(secrets).filter(([, value]) => value !== ''));
  return { attributes: { ...parsed.attributes, ...typed } };
}
