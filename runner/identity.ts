/**
 * The runner's identity as its host, kept in its state folder:
 * - `identity.json` (0600): `{ hostId, name, credential }`, the host credential the API issued at
 *   registration; the runner's bearer token for every call after it.
 * - `host-key.pem` (0600): the host's X25519 private key (PKCS#8 PEM), whose public half the API
 *   stores at registration so datastore secrets can be sealed to this host. Its path is a
 *   contract ({@link hostKeyPath}): the code that opens sealed secrets reads it there.
 * An enrollment token (from `lifeboat host enroll NAME`) comes only from the environment or a
 * file, never from the command line, and is used once, to register.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ValidationError } from '#core/errors.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { hostKeyPath } from './sealed-secrets.ts';

/** What `identity.json` holds. */
export const HostIdentity = z.strictObject({
  hostId: z.number().int().nonnegative(),
  name: z.string().min(1),
  credential: z.string().min(1),
});
export type HostIdentity = z.infer<typeof HostIdentity>;

/** `<stateDir>/identity.json` */
export function identityPath(stateDir: string): string {
  return join(stateDir, 'identity.json');
}

/** The host's private key: `<stateDir>/host-key.pem` (PKCS#8 PEM, 0600), kept in one place. */
export { hostKeyPath } from './sealed-secrets.ts';

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/** The saved identity, or undefined when there is none yet. A damaged file is an error naming it. */
export async function readIdentity(stateDir: string): Promise<HostIdentity | undefined> {
  const path = identityPath(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  try {
    return HostIdentity.parse(JSON.parse(text));
  } catch {
    // Never the content: it holds the credential.
    throw new ValidationError(`${path} is not a runner identity: remove it and enroll the host again`);
  }
}

/** Writes the identity 0600, replacing the old one at once (a crash leaves either, never half). */
export async function saveIdentity(stateDir: string, identity: HostIdentity): Promise<void> {
  const path = identityPath(stateDir);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(HostIdentity.parse(identity))}\n`, { mode: 0o600 });
  // writeFile keeps the mode of a file left by a crash: made sure of before it holds the credential.
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

function x25519Private(pem: string, path: string): KeyObject {
  let key: KeyObject | undefined;
  try {
    key = createPrivateKey(pem);
  } catch {
    key = undefined;
  }
  if (key?.asymmetricKeyType !== 'x25519') {
    throw new ValidationError(
      `${path} is not an X25519 private key (PKCS#8 PEM): move it away to make a new one`,
    );
  }
  return key;
}

/**
 * The host's public key (SPKI PEM), from `host-key.pem`, made (0600) when missing. An existing key
 * is kept, so a host that registers again keeps the key its sealed secrets are meant for.
 */
export async function ensureHostKey(stateDir: string): Promise<string> {
  const path = hostKeyPath(stateDir);
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (error) {
    if (!isMissing(error)) throw error;
    pem = generateHostKeyPair().privateKey;
    try {
      await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
    } catch (raced) {
      if ((raced as NodeJS.ErrnoException).code !== 'EEXIST') throw raced;
      pem = await readFile(path, 'utf8');
    }
  }
  const key = x25519Private(pem, path);
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}

/** Where an enrollment token may come from (runner/config.ts). */
export interface EnrollmentSource {
  /** `LIFEBOAT_ENROLL_TOKEN` */
  enrollToken?: string;
  /** `--enroll-token-file PATH` or `LIFEBOAT_ENROLL_TOKEN_FILE` */
  enrollTokenFile?: string;
}

/** The enrollment token at hand, if any: the environment's, else the file's (trimmed). */
export async function enrollmentToken(source: EnrollmentSource): Promise<string | undefined> {
  const inline = source.enrollToken?.trim();
  if (inline) return inline;
  if (!source.enrollTokenFile) return undefined;
  let text: string;
  try {
    text = await readFile(source.enrollTokenFile, 'utf8');
  } catch (error) {
    throw new ValidationError(
      `cannot read the enrollment token file ${source.enrollTokenFile}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  return text.trim() || undefined;
}
