/**
 * The drivers this runner uses: every disk driver of `drivers/disk/registry.ts` on its libvirt
 * connection, and the datastore drivers of `drivers/datastore/registry.ts`. A disk driver this
 * build does not have fails the task with a ValidationError naming it.
 */
import { NotFound, ValidationError } from '#core/errors.ts';
import { getDatastoreDriver } from '#drivers/datastore/registry.ts';
import { diskDrivers } from '#drivers/disk/registry.ts';
import type { Drivers } from './tasks/context.ts';

/** Drivers talking to libvirt at `libvirtUri`. */
export function hostDrivers(libvirtUri: string): Drivers {
  const disks = diskDrivers(libvirtUri);
  return {
    disk(name) {
      try {
        return disks.get(name);
      } catch (error) {
        if (!(error instanceof NotFound)) throw error;
        throw new ValidationError(`disk driver "${name}" is not available on this runner`);
      }
    },
    disks: () => disks.all(),
    datastore: getDatastoreDriver,
  };
}
