/**
 * Images: each backup image with its VM, datastore, state, mode, restore points, size, last point
 * and whether its stored data was last verified (or drilled) OK, FAILED, or never.
 */
import Link from '@cloudscape-design/components/link';
import StatusIndicator, { type StatusIndicatorProps } from '@cloudscape-design/components/status-indicator';
import { type Image, list } from '../api.ts';
import { formatBytes, formatDate } from '../format.ts';
import { ResourceTable } from '../ResourceTable.tsx';

/** An image row. */
interface ImageRow {
  id: number;
  name: string;
  vmId: number;
  datastoreId: number;
  state: Image['state'];
  mode: Image['mode'];
  points: number;
  size: number;
  last: string;
  verified: 'OK' | 'FAILED' | 'never';
  verifiedAt?: string;
  verifyError?: string;
}

/** How each image state is shown. */
export const IMAGE_STATE: Record<Image['state'], StatusIndicatorProps.Type> = {
  READY: 'success',
  LOCKED: 'in-progress',
  ERROR: 'error',
  DELETING: 'pending',
};

/** How the last verification (or drill) of an image is shown. */
const VERIFY_STATE: Record<ImageRow['verified'], StatusIndicatorProps.Type> = {
  OK: 'success',
  FAILED: 'error',
  never: 'stopped',
};

/** The image as a row: an increment chain counts its points, a full backup is one. */
export function imageRow(image: Image): ImageRow {
  // ISO-8601 dates sort as text.
  const dates = [image.createdAt, ...image.increments.map((inc) => inc.date)].sort();
  return {
    id: image.id,
    name: image.name,
    vmId: image.vmId,
    datastoreId: image.datastoreId,
    state: image.state,
    mode: image.mode,
    points: Math.max(1, image.increments.length),
    size: image.size,
    last: dates.at(-1) ?? image.createdAt,
    verified: image.verifyState ?? 'never',
    ...(image.verifiedAt && { verifiedAt: image.verifiedAt }),
    ...(image.verifyError && { verifyError: image.verifyError }),
  };
}

/** The images page. */
export function ImagesPage() {
  return (
    <ResourceTable<ImageRow>
      title="Images"
      noun="images"
      load={async (token) => (await list(token, 'GET /images')).map(imageRow)}
      trackBy="id"
      columns={[
        { id: 'id', header: 'ID', cell: (i) => i.id, sortingField: 'id' },
        {
          id: 'name',
          header: 'Name',
          cell: (i) => <Link href={`#/images/${i.id}`}>{i.name}</Link>,
          sortingField: 'name',
        },
        { id: 'vm', header: 'VM', cell: (i) => i.vmId, sortingField: 'vmId' },
        { id: 'ds', header: 'Datastore', cell: (i) => i.datastoreId, sortingField: 'datastoreId' },
        {
          id: 'state',
          header: 'State',
          cell: (i) => <StatusIndicator type={IMAGE_STATE[i.state]}>{i.state}</StatusIndicator>,
          sortingField: 'state',
        },
        { id: 'mode', header: 'Mode', cell: (i) => i.mode, sortingField: 'mode' },
        { id: 'points', header: 'Restore points', cell: (i) => i.points, sortingField: 'points' },
        { id: 'size', header: 'Size', cell: (i) => formatBytes(i.size), sortingField: 'size' },
        { id: 'last', header: 'Last point', cell: (i) => formatDate(i.last), sortingField: 'last' },
        {
          id: 'verified',
          header: 'Verified',
          cell: (i) => (
            <span title={i.verifyError}>
              <StatusIndicator type={VERIFY_STATE[i.verified]}>
                {i.verifiedAt ? `${i.verified} ${formatDate(i.verifiedAt)}` : i.verified}
              </StatusIndicator>
            </span>
          ),
          sortingField: 'verified',
        },
      ]}
    />
  );
}
