/**
 * One datastore: its capacity now and a chart of its used and free space over time, from the
 * capacity samples each `monitor` keeps (`GET /datastores/{id}/capacity`, oldest first).
 */
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import LineChart from '@cloudscape-design/components/line-chart';
import SpaceBetween from '@cloudscape-design/components/space-between';
import { call, list } from '../api.ts';
import { capacitySeries } from '../chart-data.ts';
import { formatBytes, formatDate } from '../format.ts';
import { useSession } from '../session.tsx';
import { useApi } from '../useApi.ts';
import { DatastoreForm } from './DatastoreForm.tsx';

const shortTime = (d: Date) =>
  d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** A label and its value. */
function Field({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <Box variant="awsui-key-label">{label}</Box>
      <div>{value}</div>
    </div>
  );
}

/** The datastore page (`#/datastores/ID`), refreshed every 30 s. */
export function DatastorePage({ id }: { id: number }) {
  const { user } = useSession();
  const { data, error, loading, reload } = useApi(async (token) => {
    const params = { params: { id } };
    const [datastore, samples] = await Promise.all([
      call(token, 'GET /datastores/{id}', params),
      list(token, 'GET /datastores/{id}/capacity', params),
    ]);
    return { datastore, samples };
  }, 30_000);
  const ds = data?.datastore;
  const series = capacitySeries(data?.samples ?? []).map((s) => ({
    ...s,
    type: 'line' as const,
    valueFormatter: (y: number) => formatBytes(y),
  }));
  return (
    <SpaceBetween size="l">
      <Header
        variant="h1"
        description={ds ? `${ds.driver} datastore ${ds.id}` : undefined}
        actions={ds && user.admin ? <DatastoreForm key={ds.id} existing={ds} onSaved={reload} /> : undefined}
      >
        {ds?.name ?? `Datastore ${id}`}
      </Header>
      {error && (
        <Alert type="error" header="Could not load the datastore">
          {error}
        </Alert>
      )}
      <Container header={<Header variant="h2">Capacity</Header>}>
        <ColumnLayout columns={4} variant="text-grid">
          <Field label="Total space" value={formatBytes(ds?.totalBytes ?? undefined)} />
          <Field label="Free space" value={formatBytes(ds?.freeBytes ?? undefined)} />
          <Field label="Backups use" value={formatBytes(ds?.usedBytes ?? undefined)} />
          <Field label="Measured" value={formatDate(ds?.monitoredAt)} />
        </ColumnLayout>
      </Container>
      <section aria-label="Used and free space over time">
        <Container header={<Header variant="h2">Used and free space over time</Header>}>
          <LineChart
            series={series}
            xScaleType="time"
            xTitle="Measured"
            yTitle="Bytes"
            height={260}
            statusType={loading && !data ? 'loading' : error ? 'error' : 'finished'}
            loadingText="Loading capacity samples"
            errorText={error}
            ariaLabel="Used and free space of the datastore over time"
            xTickFormatter={shortTime}
            yTickFormatter={(y) => formatBytes(y)}
            i18nStrings={{ legendAriaLabel: 'Legend of capacity', chartAriaRoleDescription: 'line chart' }}
            empty={<Box textAlign="center">Not measured yet</Box>}
            hideFilter
          />
        </Container>
      </section>
    </SpaceBetween>
  );
}
