/** Datastores: driver and capacity (TOTAL, FREE, USED from the last monitor) as a bar. */
import Link from '@cloudscape-design/components/link';
import ProgressBar from '@cloudscape-design/components/progress-bar';
import { type Datastore, list } from '../api.ts';
import { formatBytes, formatDate } from '../format.ts';
import { ResourceTable } from '../ResourceTable.tsx';
import { useSession } from '../session.tsx';
import { DatastoreForm } from './DatastoreForm.tsx';

/** The used share in percent, when the datastore was measured. */
function usedPercent(ds: Datastore): number | undefined {
  if (!ds.totalBytes) return undefined;
  const used = ds.usedBytes ?? ds.totalBytes - (ds.freeBytes ?? 0);
  return Math.round((used / ds.totalBytes) * 100);
}

/** The capacity cell: a bar with used, free and total, or why there is none. */
function Capacity({ ds }: { ds: Datastore }) {
  const percent = usedPercent(ds);
  if (percent === undefined) return <>not measured</>;
  return (
    <ProgressBar
      value={percent}
      ariaLabel={`${ds.name} used space`}
      description={`${formatBytes(ds.usedBytes)} used, ${formatBytes(ds.freeBytes)} free of ${formatBytes(ds.totalBytes)}`}
    />
  );
}

/** The datastores page; admins may create one. */
export function DatastoresPage() {
  const { user } = useSession();
  return (
    <ResourceTable<Datastore>
      actions={(reload) => (user.admin ? <DatastoreForm onSaved={reload} /> : null)}
      title="Datastores"
      noun="datastores"
      load={(token) => list(token, 'GET /datastores')}
      trackBy="id"
      columns={[
        { id: 'id', header: 'ID', cell: (d) => d.id, sortingField: 'id' },
        {
          id: 'name',
          header: 'Name',
          cell: (d) => <Link href={`#/datastores/${d.id}`}>{d.name}</Link>,
          sortingField: 'name',
        },
        { id: 'driver', header: 'Driver', cell: (d) => d.driver, sortingField: 'driver' },
        { id: 'owner', header: 'Owner', cell: (d) => `${d.owner}:${d.group}`, sortingField: 'owner' },
        { id: 'capacity', header: 'Capacity', cell: (d) => <Capacity ds={d} />, minWidth: 240 },
        {
          id: 'monitored',
          header: 'Measured',
          cell: (d) => formatDate(d.monitoredAt),
          sortingField: 'monitoredAt',
        },
      ]}
    />
  );
}
