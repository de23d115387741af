/**
 * Where datastore secrets (RESTIC_PASSWORD, keys) live: never in DynamoDB, never in plain in
 * task messages. Records hold a reference (`ds/100`); the API writes the values here and the
 * Admit steps read them back to seal them to the task's host (platform/sealed-secrets.ts):
 * runners read no store. Values never appear in errors or logs raised from this module.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { NotFound, ValidationError } from '#core/errors.ts';
import { secretsClient } from '#platform/aws.ts';

/** Secret values of one reference: attribute name -> value. */
export type SecretValues = Record<string, string>;

/**
 * A store of secret values by reference. Rules for implementations: `put` replaces all values
 * of the reference (creating it if needed); `get` throws NotFound for an unknown reference;
 * `delete` of an unknown reference succeeds (callers retry).
 */
export interface SecretStore {
  put(ref: string, values: SecretValues): Promise<void>;
  get(ref: string): Promise<SecretValues>;
  delete(ref: string): Promise<void>;
}

const REF = /^[a-z0-9][a-z0-9/_-]{0,200}$/i;

function checkRef(ref: string): void {
  if (!REF.test(ref) || ref.includes('..')) throw new ValidationError(`invalid secret reference "${ref}"`);
}

function parseValues(text: string, ref: string): SecretValues {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`secret ${ref} is not a JSON object`);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}

/** Days a deleted datastore secret can still be restored (Secrets Manager allows 7 to 30). */
export const SECRET_RECOVERY_DAYS = 7;

/**
 * AWS Secrets Manager: one secret `lifeboat/<ref>` holding a JSON object. A deleted secret is
 * scheduled for deletion with a recovery window ({@link SECRET_RECOVERY_DAYS}), so a datastore
 * removed by mistake keeps its password for a week (`aws secretsmanager restore-secret`); a put
 * on a reference pending deletion restores it first.
 */
export class SecretsManagerStore implements SecretStore {
  constructor(private readonly prefix = 'lifeboat/') {}

  private id(ref: string): string {
    checkRef(ref);
    return `${this.prefix}${ref}`;
  }

  async put(ref: string, values: SecretValues): Promise<void> {
    const SecretId = this.id(ref);
    const SecretString = JSON.stringify(values);
    try {
      await secretsClient().send(new PutSecretValueCommand({ SecretId, SecretString }));
    } catch (err) {
      if (
        err instanceof Error &&
        err.name === 'InvalidRequestException' &&
        (await this.pendingDeletion(SecretId))
      ) {
        await secretsClient().send(new RestoreSecretCommand({ SecretId }));
        await secretsClient().send(new PutSecretValueCommand({ SecretId, SecretString }));
        return;
      }
      if (!(err instanceof Error) || err.name !== 'ResourceNotFoundException') throw err;
      await secretsClient().send(new CreateSecretCommand({ Name: SecretId, SecretString }));
    }
  }

  /** Whether the secret exists and is scheduled for deletion. */
  private async pendingDeletion(SecretId: string): Promise<boolean> {
    const out = await secretsClient().send(new DescribeSecretCommand({ SecretId }));
    return out.DeletedDate !== undefined;
  }

  async get(ref: string): Promise<SecretValues> {
    const SecretId = this.id(ref);
    try {
      const out = await secretsClient().send(new GetSecretValueCommand({ SecretId }));
      return parseValues(out.SecretString ?? '{}', ref);
    } catch (err) {
      if (err instanceof Error && err.name === 'ResourceNotFoundException') {
        throw new NotFound(`secret ${ref} does not exist`);
      }
      throw err;
    }
  }

  async delete(ref: string): Promise<void> {
    try {
      await secretsClient().send(
        new DeleteSecretCommand({ SecretId: this.id(ref), RecoveryWindowInDays: SECRET_RECOVERY_DAYS }),
      );
    } catch (err) {
      if (err instanceof Error && err.name === 'ResourceNotFoundException') return;
      // Deleted already (a retry): it stays scheduled, with its first recovery window.
      if (
        err instanceof Error &&
        err.name === 'InvalidRequestException' &&
        (await this.pendingDeletion(this.id(ref)))
      ) {
        return;
      }
      throw err;
    }
  }
}

/** Local mode: one 0600 JSON file per reference in a 0700 folder. */
export class LocalFileStore implements SecretStore {
  constructor(readonly folder: string) {}

  private file(ref: string): string {
    checkRef(ref);
    return join(this.folder, `${ref.replaceAll('/', '_')}.json`);
  }

  async put(ref: string, values: SecretValues): Promise<void> {
    const file = this.file(ref);
    await mkdir(this.folder, { recursive: true, mode: 0o700 });
    await chmod(this.folder, 0o700);
    // Write to a 0600 temp file first so the secret is never readable by others, even briefly.
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(values), { mode: 0o600 });
    await rename(tmp, file);
  }

  async get(ref: string): Promise<SecretValues> {
    let text: string;
    try {
      text = await readFile(this.file(ref), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new NotFound(`secret ${ref} does not exist`);
      throw err;
    }
    return parseValues(text, ref);
  }

  async delete(ref: string): Promise<void> {
    await rm(this.file(ref), { force: true });
  }
}

/**
 * The store chosen by LIFEBOAT_SECRET_STORE: `secretsmanager` (the default) or
 * `local:<folder>`. This is the one place code may differ between AWS and local mode.
 */
export function secretStore(setting = process.env.LIFEBOAT_SECRET_STORE ?? 'secretsmanager'): SecretStore {
  if (setting === 'secretsmanager') return new SecretsManagerStore();
  if (setting.startsWith('local:') && setting.length > 'local:'.length) {
    return new LocalFileStore(setting.slice('local:'.length));
  }
  throw new Error(`LIFEBOAT_SECRET_STORE must be "secretsmanager" or "local:<folder>" (got "${setting}")`);
}
