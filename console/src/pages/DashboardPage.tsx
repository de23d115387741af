/**
 * Dashboard: today's backups (succeeded, failed, cancelled), what runs now with its progress,
 * and each datastore's free space; all from what the API shows the signed-in user.
 */
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import Link from '@cloudscape-design/components/link';
import ProgressBar from '@cloudscape-design/components/progress-bar';
import SpaceBetween from '@cloudscape-design/components/space-between';
import { type Execution, list } from '../api.ts';
import { formatBytes } from '../format.ts';
import { useApi } from '../useApi.ts';
import { bytesText } from './ExecutionsPage.tsx';

/** Today's backups by outcome, counted from executions created since local midnight. */
export function backupsToday(executions: readonly Execution[], now = new Date()) {
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const today = executions.filter((e) => e.kind === 'backup' && Date.parse(e.createdAt) >= midnight);
  const count = (...states: Execution['state'][]) => today.filter((e) => states.includes(e.state)).length;
  return {
    succeeded: count('SUCCEEDED'),
    failed: count('FAILED', 'TIMED_OUT'),
    cancelled: count('ABORTED'),
  };
}

async function load(token: string) {
  const [executions, datastores] = await Promise.all([
    list(token, 'GET /executions'),
    list(token, 'GET /datastores'),
  ]);
  return { executions, datastores };
}

/** One figure with its label. */
function Figure({ label, value }: { label: string; value: number }) {
  return (
    <div>
      <Box variant="awsui-key-label">{label}</Box>
      <Box variant="awsui-value-large">{value}</Box>
    </div>
  );
}

/** The dashboard page, refreshed every 5 s. */
export function DashboardPage() {
  const { data, error } = useApi(load, 5000);
  const today = backupsToday(data?.executions ?? []);
  const running = (data?.executions ?? []).filter((e) => e.state === 'RUNNING' || e.state === 'QUEUED');
  return (
    <SpaceBetween size="l">
      <Header variant="h1">Dashboard</Header>
      {error && (
        <Alert type="error" header="Could not load the dashboard">
          {error}
        </Alert>
      )}
      <Container header={<Header variant="h2">Backups today</Header>}>
        <ColumnLayout columns={3} variant="text-grid">
          <Figure label="Succeeded" value={today.succeeded} />
          <Figure label="Failed" value={today.failed} />
          <Figure label="Cancelled" value={today.cancelled} />
        </ColumnLayout>
      </Container>
      <Container header={<Header variant="h2">Running now</Header>}>
        {running.length === 0 ? (
          <Box color="text-status-inactive">Nothing is running.</Box>
        ) : (
          <SpaceBetween size="m">
            {running.map((e) => (
              <ProgressBar
                key={e.id}
                label={
                  <Link href={`#/executions/${encodeURIComponent(e.id)}`}>
                    {`${e.kind} ${e.id}${e.vmId === undefined ? '' : ` of VM ${e.vmId}`}`}
                  </Link>
                }
                value={e.bytesTotal ? Math.round((e.bytesDone / e.bytesTotal) * 100) : 0}
                description={`${e.state}, ${e.phase}`}
                additionalInfo={bytesText(e)}
              />
            ))}
          </SpaceBetween>
        )}
      </Container>
      <Container header={<Header variant="h2">Datastores</Header>}>
        {(data?.datastores ?? []).length === 0 ? (
          <Box color="text-status-inactive">No datastores.</Box>
        ) : (
          <ColumnLayout columns={2}>
            {(data?.datastores ?? []).map((d) => (
              <ProgressBar
                key={d.id}
                label={d.name}
                value={d.totalBytes ? Math.round(((d.usedBytes ?? 0) / d.totalBytes) * 100) : 0}
                description={
                  d.totalBytes
                    ? `${formatBytes(d.freeBytes)} free of ${formatBytes(d.totalBytes)}`
                    : 'not measured'
                }
              />
            ))}
          </ColumnLayout>
        )}
      </Container>
    </SpaceBetween>
  );
}
