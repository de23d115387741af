/**
 * The disk drivers by name, as a backup task's `disks[].driver` names them. The rbd driver joins
 * here when it exists.
 */
import { NotFound } from '#core/errors.ts';
import type { DiskDriver } from './driver.ts';
import { Qcow2Driver } from './qcow2-driver.ts';

const drivers = new Map<string, () => DiskDriver>([['qcow2', () => new Qcow2Driver()]]);

/** The disk driver called `name` (`qcow2`), on the local libvirt (`qemu:///system`). */
export function diskDriver(name: string): DiskDriver {
  const make = drivers.get(name);
  if (!make) throw new NotFound(`No disk driver called '${name}'`);
  return make();
}
