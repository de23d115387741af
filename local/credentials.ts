/**
 * The per-start secrets of local mode: AWS-style access keys the clients of the local emulators
 * sign their requests with, and that the endpoints the API does not front check
 * (local/sigv4-check.ts). The top-level key is the admin's (local mode's own bootstrap, the
 * CLI's local tooling, tests: allowed everything); `principals` holds one key per principal of
 * the template (local/iam/keyring.ts), each allowed only what its IAM policies allow. New ones
 * are made at each start and kept only in `<home>/local-credentials.json` (0600) and in the
 * environment of the processes local mode starts.
 */
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { homePaths } from './config.ts';

/** The access key local mode's endpoints accept. */
export const LocalCredentials = z
  .object({
    accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
    secretAccessKey: z.string().min(32).max(128),
  })
  .strict();
export type LocalCredentials = z.infer<typeof LocalCredentials>;

/** A fresh access key: `LBLOCAL` plus 16 random hex digits, and 256 random bits of secret. */
export function newLocalCredentials(): LocalCredentials {
  return {
    accessKeyId: `LBLOCAL${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(32).toString('base64url'),
  };
}

/** The key file: the admin's key at the top (what older readers take), every principal's by name. */
const LocalCredentialsFile = LocalCredentials.extend({
  principals: z.record(z.string(), LocalCredentials).optional(),
});

/**
 * Write `credentials` (the admin's key) and `principals` (each principal's, by key ring name) to
 * `file`, mode 0600, atomically (a client reading at that moment sees the old keys or the new
 * ones, never half of them).
 */
export async function writeLocalCredentials(
  file: string,
  credentials: LocalCredentials,
  principals?: Record<string, LocalCredentials>,
): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  // Only the two fields: the SDK's clients mark the credentials objects they are given.
  const pick = (c: LocalCredentials) => ({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey });
  const content = {
    ...pick(credentials),
    ...(principals && {
      principals: Object.fromEntries(Object.entries(principals).map(([name, c]) => [name, pick(c)])),
    }),
  };
  await writeFile(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** The admin's credentials of the local mode running in `home` (see {@link homePaths}). */
export async function readLocalCredentials(home: string): Promise<LocalCredentials> {
  const { principals: _, ...admin } = await readKeyFile(home);
  return admin;
}

/**
 * The key of principal `name` (`role:<logical id>`, `host:<host name>`, `functions`, ...; see
 * local/iam/keyring.ts) of the local mode running in `home`.
 */
export async function readPrincipalCredentials(home: string, name: string): Promise<LocalCredentials> {
  const found = (await readKeyFile(home)).principals?.[name];
  if (!found) throw new Error(`local mode in ${home} has no principal ${name}`);
  return found;
}

async function readKeyFile(home: string): Promise<z.infer<typeof LocalCredentialsFile>> {
  const file = homePaths(home).credentials;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${file} (is local mode running?): ${(err as Error).message}`);
  }
  const parsed = LocalCredentialsFile.safeParse(raw);
  if (!parsed.success) throw new Error(`${file} does not hold local credentials`);
  return parsed.data;
}
