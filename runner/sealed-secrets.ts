/**
 * The runner's side of sealed secrets: a task's datastore carries its secret values sealed to
 * this host's key by the Admit step (functions/sealed-secrets.ts), and they are opened here, in
 * memory, for that task only. The private key is `<stateDir>/host-key.pem` (0600), written when
 * the runner enrolled; it is read at each use, so a runner enrolled again needs no restart. The
 * runner reads no secret store (no Secrets Manager, no local secret folder) at all.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Conflict, ValidationError } from '#core/errors.ts';
import { sealContext, unsealSecrets } from '#platform/sealed-secrets.ts';
import type { SecretResolver } from './tasks/context.ts';

/** The host's private key file, in the runner's state folder. */
export const HOST_KEY_FILE = 'host-key.pem';

/** Path of the host's private key under `stateDir`. */
export function hostKeyPath(stateDir: string): string {
  return join(stateDir, HOST_KEY_FILE);
}

async function readHostKey(keyFile: string): Promise<string> {
  try {
    return await readFile(keyFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Conflict(
        `this runner has no host key (${keyFile}): enroll it (lifeboat host enroll NAME) to open datastore secrets`,
      );
    }
    throw error;
  }
}

/**
 * Opens `datastore.sealedSecrets` with the key in `keyFile`, for the datastore's own context
 * (`ds/<id>`). A value sealed to another host, for another datastore, or altered is refused
 * with a ValidationError naming the datastore, never a value.
 */
export function sealedSecretResolver(keyFile: string): SecretResolver {
  return async (datastore) => {
    if (!datastore.sealedSecrets) return {};
    const privateKey = await readHostKey(keyFile);
    try {
      return unsealSecrets(datastore.sealedSecrets, privateKey, sealContext(datastore.id));
    } catch (error) {
      if (error instanceof ValidationError) {
        throw new ValidationError(
          `datastore ${datastore.id}: the task's secrets cannot be opened with this host's key (sealed to another host, or altered)`,
        );
      }
      throw new Conflict(`host key ${keyFile} cannot be used: ${(error as Error).message}`);
    }
  };
}
