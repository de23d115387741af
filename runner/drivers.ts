/**
 * The drivers this runner uses: the qcow2 disk driver on its libvirt connection, and the
 * datastore drivers of `drivers/datastore/registry.ts`. A disk kind with no driver on this build
 * (rbd, for now) fails the task with a ValidationError naming it.
 */
import { ValidationError } from '#core/errors.ts';
import { getDatastoreDriver } from '#drivers/datastore/registry.ts';
import type { DiskDriver } from '#drivers/disk/driver.ts';
import { Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import type { Drivers } from './tasks/context.ts';

/** Drivers talking to libvirt at `libvirtUri`. */
export function hostDrivers(libvirtUri: string): Drivers {
  const disks = new Map<string, DiskDriver>([['qcow2', new Qcow2Driver(libvirtUri)]]);
  return {
    disk(name) {
      const driver = disks.get(name);
      if (!driver) throw new ValidationError(`disk driver "${name}" is not available on this runner`);
      return driver;
    },
    datastore: getDatastoreDriver,
  };
}
