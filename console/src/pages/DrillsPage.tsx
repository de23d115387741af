/**
 * Restore drills: each drill of an image the user may use, newest first, with its result, the
 * restore points it started, the bytes it restored, how long it took and, when it failed, why
 * (the report `lifeboat drill list|show` prints).
 */
import Link from '@cloudscape-design/components/link';
import StatusIndicator, { type StatusIndicatorProps } from '@cloudscape-design/components/status-indicator';
import { type Drill, list } from '../api.ts';
import { formatBytes, formatDate } from '../format.ts';
import { ResourceTable } from '../ResourceTable.tsx';

/** How each drill result is shown. */
const RESULT: Record<Drill['result'], StatusIndicatorProps.Type> = {
  RUNNING: 'in-progress',
  OK: 'success',
  FAILED: 'error',
};

/** The drills page. */
export function DrillsPage() {
  return (
    <ResourceTable<Drill>
      title="Restore drills"
      noun="drills"
      load={(token) => list(token, 'GET /drills')}
      refreshMs={10_000}
      trackBy="id"
      columns={[
        { id: 'id', header: 'ID', cell: (d) => d.id, sortingField: 'id' },
        {
          id: 'image',
          header: 'Image',
          cell: (d) => <Link href={`#/images/${d.imageId}`}>{d.imageId}</Link>,
          sortingField: 'imageId',
        },
        { id: 'vm', header: 'VM', cell: (d) => d.vmId, sortingField: 'vmId' },
        {
          id: 'result',
          header: 'Result',
          cell: (d) => <StatusIndicator type={RESULT[d.result]}>{d.result}</StatusIndicator>,
          sortingField: 'result',
        },
        // Why a drill failed, next to its result: the first thing an operator reads.
        { id: 'error', header: 'Error', cell: (d) => d.error ?? '' },
        {
          id: 'points',
          header: 'Points started',
          cell: (d) => `${d.points ?? '-'}${d.latestOnly ? ' (latest only)' : ''}`,
          sortingField: 'points',
        },
        { id: 'bytes', header: 'Restored', cell: (d) => formatBytes(d.bytes), sortingField: 'bytes' },
        {
          id: 'seconds',
          header: 'Seconds',
          cell: (d) => (d.seconds === undefined ? '-' : d.seconds.toFixed(1)),
          sortingField: 'seconds',
        },
        {
          id: 'created',
          header: 'Requested',
          cell: (d) => formatDate(d.createdAt),
          sortingField: 'createdAt',
        },
        { id: 'host', header: 'Host', cell: (d) => d.hostId, sortingField: 'hostId' },
        {
          id: 'execution',
          header: 'Execution',
          cell: (d) => (
            <Link href={`#/executions/${encodeURIComponent(d.executionId)}`}>{d.executionId}</Link>
          ),
        },
      ]}
    />
  );
}
