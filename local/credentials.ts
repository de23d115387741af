/**
 * The per-start secret of local mode: an AWS-style access key that every client of the local
 * emulators (the in-process Lambdas, the runner, tests, benchmarks) signs its requests with, and
 * that the endpoints the API does not front check (local/sigv4-check.ts). A new one is made at
 * each start and kept only in `<home>/local-credentials.json` (0600) and in the environment of
 * the processes local mode starts.
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

/**
 * Write `credentials` to `file`, mode 0600, atomically (a client reading at that moment sees the
 * old key or the new one, never half of one).
 */
export async function writeLocalCredentials(file: string, credentials: LocalCredentials): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** The credentials of the local mode running in `home` (see {@link homePaths}). */
export async function readLocalCredentials(home: string): Promise<LocalCredentials> {
  const file = homePaths(home).credentials;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${file} (is local mode running?): ${(err as Error).message}`);
  }
  const parsed = LocalCredentials.safeParse(raw);
  if (!parsed.success) throw new Error(`${file} does not hold local credentials`);
  return parsed.data;
}
