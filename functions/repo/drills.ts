/** The drills table: restore drill reports (core/model.ts Drill), newest first when listed. */
import { Drill } from '#core/model.ts';
import { Table } from './table.ts';

/** The drills repository (`Drill 3 does not exist`). */
export const drills = new Table('drills', Drill, 'Drill');

/** Every drill report, newest first, optionally of one image. */
export async function listDrills(filter: { imageId?: number } = {}): Promise<Drill[]> {
  const items = await drills.list(
    filter.imageId === undefined
      ? undefined
      : { expression: '#i = :i', names: { '#i': 'imageId' }, values: { ':i': filter.imageId } },
  );
  return items.sort((a, b) => b.id - a.id);
}
