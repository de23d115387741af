/**
 * RESTORE_POOLS: the Ceph pools an admin lets restores on a host write new rbd images into
 * (`PATCH /hosts/{id}`). The API checks it when a restore is asked for and Admit again when the
 * task is built (the list may have changed meanwhile); the runner checks its own setting. Pure.
 */
import { Forbidden } from './errors.ts';
import type { Host } from './model.ts';

/** Forbidden unless `pool` (when given) is one of the host's RESTORE_POOLS. */
export function assertPoolAllowed(pool: string | undefined, host: Pick<Host, 'id' | 'restorePools'>): void {
  if (pool !== undefined && !(host.restorePools ?? []).includes(pool)) {
    throw new Forbidden(`pool: host ${host.id} does not allow restores into pool "${pool}" (RESTORE_POOLS)`);
  }
}
