/**
 * Errors of the disk drivers. Their `name` is a contract (see `core/errors.ts`): the runner
 * reports it through SendTaskFailure as the state machine's `Error`, so never rename one.
 */
import { LifeboatError } from '#core/errors.ts';

/** FS_FREEZE=AGENT could not freeze the guest's file systems (no agent, agent error). */
export class FsFreezeFailed extends LifeboatError {
  override readonly name: string = 'FsFreezeFailed';
  override readonly status = 409;
}

/** The libvirt domain named in a task does not exist on this host. */
export class DomainNotFound extends LifeboatError {
  override readonly name: string = 'DomainNotFound';
  override readonly status = 404;
}

/**
 * A disk is not as the task describes it: its live source differs (an overlay left by a crash,
 * a disk moved since the inventory), or its format is not one this driver handles.
 */
export class DiskMismatch extends LifeboatError {
  override readonly name: string = 'DiskMismatch';
  override readonly status = 409;
}

/** Snapshotting or committing a disk back failed; the message says which disk and why. */
export class DiskSnapshotFailed extends LifeboatError {
  override readonly name: string = 'DiskSnapshotFailed';
  override readonly status = 500;
}

/**
 * An incremental backup cannot follow its parent: the checkpoint or its bitmap is missing or
 * inconsistent (disk replaced, VM moved or recreated, unclean stop). The message says why; the
 * caller starts a new FULL chain and records it. Never answered with a wrong increment.
 */
export class ChainBroken extends LifeboatError {
  override readonly name: string = 'ChainBroken';
  override readonly status = 409;
}

/**
 * A disk image read back from a datastore names something a restore must never open: an
 * external data file, or (for a FULL) a backing file. Also a `.qcow2` file that is not qcow2.
 */
export class UnsafeDiskImage extends LifeboatError {
  override readonly name: string = 'UnsafeDiskImage';
  override readonly status = 400;
}

/**
 * A ceph/rbd call did not answer in time. A Ceph cluster in trouble (full, no quorum, OSDs down)
 * makes calls hang rather than fail, so every call has a deadline; the message names the call.
 */
export class CephTimeout extends LifeboatError {
  override readonly name: string = 'CephTimeout';
  override readonly status = 504;
}

/** A ceph/rbd call failed (cluster unreachable, image or snapshot missing, permission refused). */
export class CephFailed extends LifeboatError {
  override readonly name: string = 'CephFailed';
  override readonly status = 502;
}
