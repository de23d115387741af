/** Images table (backup images), with the byVm index. */
import { Image, type Image as ImageType } from '#core/model.ts';
import { type Condition, Table } from './table.ts';

/** The images repository (`Image 12 does not exist`). */
export const images = new Table('images', Image, 'Image');

/** Filters of the image list. */
export interface ImageFilter {
  vmId?: number;
  datastoreId?: number;
}

/** Images, oldest first, filtered by VM (through the byVm index) and/or datastore. */
export async function listImages(filter: ImageFilter = {}): Promise<ImageType[]> {
  const ds: Condition | undefined =
    filter.datastoreId === undefined
      ? undefined
      : { expression: '#ds = :ds', names: { '#ds': 'datastoreId' }, values: { ':ds': filter.datastoreId } };
  let items: ImageType[];
  if (filter.vmId !== undefined) {
    items = await images.query('byVm', {
      expression: '#vm = :vm',
      names: { '#vm': 'vmId' },
      values: { ':vm': filter.vmId },
    });
    if (filter.datastoreId !== undefined) items = items.filter((i) => i.datastoreId === filter.datastoreId);
  } else {
    items = await images.list(ds);
  }
  return items.sort((a, b) => a.id - b.id);
}
