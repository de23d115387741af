/**
 * Charts: backup size over time per VM (a line per VM, from its images' restore points) and
 * backup duration over time (bars per backup execution, from its start and end), from
 * `GET /images` and `GET /executions`.
 */
import Alert from '@cloudscape-design/components/alert';
import BarChart, { type BarChartProps } from '@cloudscape-design/components/bar-chart';
import Box from '@cloudscape-design/components/box';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import LineChart from '@cloudscape-design/components/line-chart';
import SpaceBetween from '@cloudscape-design/components/space-between';
import { type Execution, type Image, list, type Vm } from '../api.ts';
import { durationSeries, sizeSeries } from '../chart-data.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { useApi } from '../useApi.ts';

async function load(token: string) {
  const [images, executions, vms] = await Promise.all([
    list(token, 'GET /images').catch(() => [] as Image[]),
    list(token, 'GET /executions').catch(() => [] as Execution[]),
    list(token, 'GET /vms').catch(() => [] as Vm[]),
  ]);
  return { images, executions, vms };
}

const shortDate = (d: Date) => d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
const shortTime = (d: Date) =>
  d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** The charts page. */
export function ChartsPage() {
  const { data, error, loading } = useApi(load, 30_000);
  const vmName = (id: number) => data?.vms.find((v) => v.id === id)?.name ?? `VM ${id}`;
  const sizes = [...sizeSeries(data?.images ?? []).entries()].map(([vmId, points]) => ({
    title: vmName(vmId),
    type: 'line' as const,
    data: points,
    valueFormatter: (y: number) => formatBytes(y),
  }));
  const durations: BarChartProps<string>['series'] = [
    ...durationSeries(data?.executions ?? []).entries(),
  ].map(([vmId, points]) => ({
    title: vmName(vmId),
    type: 'bar',
    data: points.map((p) => ({ x: shortTime(p.x), y: p.y })),
    valueFormatter: (y: number) => formatDuration(y),
  }));
  const status = loading && !data ? 'loading' : error ? 'error' : 'finished';
  return (
    <SpaceBetween size="l">
      <Header variant="h1" description="From the images and executions you may see">
        Charts
      </Header>
      {error && (
        <Alert type="error" header="Could not load the charts">
          {error}
        </Alert>
      )}
      <section aria-label="Backup size over time">
        <Container header={<Header variant="h2">Backup size over time</Header>}>
          <LineChart
            series={sizes}
            xScaleType="time"
            xTitle="Restore point"
            yTitle="Size"
            height={260}
            statusType={status}
            loadingText="Loading images"
            errorText={error}
            ariaLabel="Backup size over time per VM"
            xTickFormatter={shortDate}
            yTickFormatter={(y) => formatBytes(y)}
            i18nStrings={{
              legendAriaLabel: 'Legend of backup sizes',
              chartAriaRoleDescription: 'line chart',
            }}
            empty={<Box textAlign="center">No backups yet</Box>}
            noMatch={<Box textAlign="center">No VM matches</Box>}
            hideFilter
          />
        </Container>
      </section>
      <section aria-label="Backup duration over time">
        <Container header={<Header variant="h2">Backup duration over time</Header>}>
          <BarChart
            series={durations}
            xScaleType="categorical"
            xTitle="Backup started"
            yTitle="Duration"
            height={260}
            statusType={status}
            loadingText="Loading executions"
            errorText={error}
            ariaLabel="Backup duration over time"
            yTickFormatter={(y) => formatDuration(y)}
            i18nStrings={{
              legendAriaLabel: 'Legend of backup durations',
              chartAriaRoleDescription: 'bar chart',
            }}
            empty={<Box textAlign="center">No finished backups yet</Box>}
            noMatch={<Box textAlign="center">No VM matches</Box>}
            hideFilter
          />
        </Container>
      </section>
    </SpaceBetween>
  );
}
