/** Executions: the list (state, phase, bytes), refreshed every few seconds while one runs. */
import Link from '@cloudscape-design/components/link';
import StatusIndicator, { type StatusIndicatorProps } from '@cloudscape-design/components/status-indicator';
import { type Execution, list } from '../api.ts';
import { formatBytes, formatDate } from '../format.ts';
import { ResourceTable } from '../ResourceTable.tsx';

/** How each execution state is shown. */
export const EXECUTION_STATE: Record<Execution['state'], StatusIndicatorProps.Type> = {
  QUEUED: 'pending',
  RUNNING: 'in-progress',
  SUCCEEDED: 'success',
  FAILED: 'error',
  TIMED_OUT: 'error',
  ABORTED: 'stopped',
};

/** `done / total` bytes, or what is known. */
export function bytesText(e: Execution): string {
  return e.bytesTotal
    ? `${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)}`
    : formatBytes(e.bytesDone);
}

/** The executions page. */
export function ExecutionsPage() {
  return (
    <ResourceTable<Execution>
      title="Executions"
      noun="executions"
      load={(token) => list(token, 'GET /executions')}
      refreshMs={5000}
      trackBy="id"
      columns={[
        {
          id: 'id',
          header: 'ID',
          cell: (e) => <Link href={`#/executions/${encodeURIComponent(e.id)}`}>{e.id}</Link>,
          sortingField: 'id',
        },
        { id: 'kind', header: 'Kind', cell: (e) => e.kind, sortingField: 'kind' },
        {
          id: 'state',
          header: 'State',
          cell: (e) => <StatusIndicator type={EXECUTION_STATE[e.state]}>{e.state}</StatusIndicator>,
          sortingField: 'state',
        },
        { id: 'phase', header: 'Phase', cell: (e) => e.phase, sortingField: 'phase' },
        { id: 'vm', header: 'VM', cell: (e) => e.vmId ?? '-', sortingField: 'vmId' },
        { id: 'bytes', header: 'Bytes', cell: bytesText, sortingField: 'bytesDone' },
        { id: 'created', header: 'Created', cell: (e) => formatDate(e.createdAt), sortingField: 'createdAt' },
      ]}
    />
  );
}
