/**
 * The one registry of disk drivers. A backup task names each disk's driver (`disks[].driver`);
 * a task of an older control plane names none, and gets {@link DEFAULT_DISK_DRIVER} (file disks),
 * as before the field. Stored backup files are matched to the driver that wrote them by their
 * names ({@link DiskDriver.describeArtifact}), and reconcile asks every driver. A new kind of
 * disk (rbd) joins by one line here: the runner names no driver or format of its own.
 */
import { NotFound, ValidationError } from '#core/errors.ts';
import type { DiskDriver } from './driver.ts';
import { Qcow2Driver } from './qcow2-driver.ts';
import { RbdDriver } from './rbd-driver.ts';
import { DEFAULT_URI } from './tools.ts';

/** The driver of a disk a task names no driver for: file disks (qcow2 or raw). */
export const DEFAULT_DISK_DRIVER = 'qcow2';

// rbd first: `driverForArtifact` asks drivers in this order, and the file driver reads any
// `*.qcow2` as its own, a flattened rbd FULL (`disk.<id>.rbd.qcow2`) included.
const makers = new Map<string, (libvirtUri: string) => DiskDriver>([
  ['rbd', (uri) => new RbdDriver(uri)],
  ['qcow2', (uri) => new Qcow2Driver(uri)],
]);

/** The disk drivers of this build, on one libvirt connection. */
export interface DiskDrivers {
  /** The driver called `name` (absent: {@link DEFAULT_DISK_DRIVER}); NotFound for an unknown one. */
  get(name?: string): DiskDriver;
  /** Every driver, in registration order. */
  all(): readonly DiskDriver[];
}

/** One instance of every registered driver, talking to libvirt at `libvirtUri`. */
export function diskDrivers(libvirtUri: string = DEFAULT_URI): DiskDrivers {
  const made = new Map([...makers].map(([name, make]) => [name, make(libvirtUri)]));
  return {
    get(name = DEFAULT_DISK_DRIVER) {
      const driver = made.get(name);
      if (!driver) throw new NotFound(`No disk driver called '${name}'`);
      return driver;
    },
    all: () => [...made.values()],
  };
}

/** The disk driver called `name` (`qcow2`), on the local libvirt (`qemu:///system`). */
export function diskDriver(name: string): DiskDriver {
  return diskDrivers().get(name);
}

/**
 * The driver among `drivers` that wrote the stored backup file `file` (the first that reads
 * its name); a ValidationError when none does.
 */
export function driverForArtifact(drivers: readonly DiskDriver[], file: string): DiskDriver {
  const driver = drivers.find((d) => d.describeArtifact(file) !== null);
  if (!driver)
    throw new ValidationError(`backup file "${file}" was written by no disk driver of this runner`);
  return driver;
}
