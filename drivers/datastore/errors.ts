/**
 * Errors of the datastore drivers. Their `name` is a contract (see `core/errors.ts`): the runner
 * reports it through SendTaskFailure and the state machines retry only the transient ones
 * (`DatastoreLocked`, defined in core because the state machines name it).
 */
import { LifeboatError } from '#core/errors.ts';

export { DatastoreLocked } from '#core/errors.ts';

/** The datastore refused our credentials: wrong RESTIC_PASSWORD, ssh key not accepted. */
export class DatastoreAuthFailed extends LifeboatError {
  override readonly name: string = 'DatastoreAuthFailed';
  override readonly status = 502;
}

/** The datastore's server cannot be reached: connection refused, no route, unknown host. */
export class DatastoreUnreachable extends LifeboatError {
  override readonly name: string = 'DatastoreUnreachable';
  override readonly status = 502;
}

/** The backup (or the file asked for inside it) is not in the datastore, or is incomplete. */
export class BackupNotFound extends LifeboatError {
  override readonly name: string = 'BackupNotFound';
  override readonly status = 404;
  constructor(message: string, options?: { cause?: unknown; repositoryMissing?: boolean }) {
    super(message, options);
    this.repositoryMissing = options?.repositoryMissing ?? false;
  }
  /** True when the VM's whole repository or folder is missing (nothing was ever stored). */
  readonly repositoryMissing: boolean;
}

/** The driver cannot store this kind of source (an NBD export given to rsync). */
export class UnsupportedSource extends LifeboatError {
  override readonly name: string = 'UnsupportedSource';
  override readonly status = 400;
}

/**
 * A backup read back from the datastore right after it was stored does not hash to the sha256
 * computed while it was sent: the stored data is damaged. Not transient; the backup is removed.
 */
export class BackupVerifyFailed extends LifeboatError {
  override readonly name: string = 'BackupVerifyFailed';
  override readonly status = 502;
}

/**
 * The ssh server runs no command for us but its forced one (an rsync-only account: rrsync, or
 * sftp only), or lacks the tool asked for (no sha256 tool): the caller turns to what rsync
 * itself can do there.
 */
export class RemoteCommandRefused extends LifeboatError {
  override readonly name: string = 'RemoteCommandRefused';
  override readonly status = 502;
}
