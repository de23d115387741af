/** The datastore drivers by name, as a datastore's `driver` field names them. */
import { NotFound } from '#core/errors.ts';
import type { DatastoreDriver } from './driver.ts';
import { resticDriver } from './restic-driver.ts';
import { rsyncDriver } from './rsync-driver.ts';

/** Every driver this build has. */
export const DATASTORE_DRIVERS: ReadonlyMap<string, DatastoreDriver> = new Map(
  [resticDriver, rsyncDriver].map((driver) => [driver.name, driver] as const),
);

/** The driver called `name`; throws NotFound for a name no driver has. */
export function getDatastoreDriver(name: string): DatastoreDriver {
  const driver = DATASTORE_DRIVERS.get(name);
  if (!driver) {
    throw new NotFound(
      `datastore driver "${name}" does not exist (drivers: ${[...DATASTORE_DRIVERS.keys()].join(', ')})`,
    );
  }
  return driver;
}
