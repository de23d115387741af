/**
 * Dashboard: today's backups (succeeded, failed, cancelled), what runs now with its progress,
 * each datastore's free space, and what needs attention (VMs whose scheduled backups stopped
 * succeeding, images that failed their verification); all from what the API shows the
 * signed-in user.
 */
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import Link from '@cloudscape-design/components/link';
import ProgressBar from '@cloudscape-design/components/progress-bar';
import SpaceBetween from '@cloudscape-design/components/space-between';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import { call, type Execution, list } from '../api.ts';
import { formatBytes, formatDate } from '../format.ts';
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

/** What the dashboard reads of `GET /stats` (core/stats.ts). */
interface Attention {
  /** VMs whose last successful backup is older than twice their schedule's period. */
  missedBackups: { vmId: number; lastSuccessAt?: string; missedSince: string }[];
  /** Images whose last verification or drill FAILED. */
  verifyFailures: number;
}

async function load(token: string) {
  const [executions, datastores, stats] = await Promise.all([
    list(token, 'GET /executions'),
    list(token, 'GET /datastores'),
    call(token, 'GET /stats') as Promise<Partial<Attention>>,
  ]);
  return {
    executions,
    datastores,
    attention: { missedBackups: stats.missedBackups ?? [], verifyFailures: stats.verifyFailures ?? 0 },
  };
}

/** Missed backups and failed verifications, each linked to where to look. */
function NeedsAttention({ attention }: { attention: Attention }) {
  const { missedBackups, verifyFailures } = attention;
  if (missedBackups.length === 0 && verifyFailures === 0) {
    return <Box color="text-status-inactive">Every scheduled backup is on time; no verification failed.</Box>;
  }
  return (
    <SpaceBetween size="s">
      {verifyFailures > 0 && (
        <StatusIndicator type="error">
          <Link href="#/images">{`${verifyFailures} image${verifyFailures === 1 ? '' : 's'} failed verification`}</Link>
        </StatusIndicator>
      )}
      {missedBackups.map((m) => (
        <StatusIndicator key={m.vmId} type="warning">
          <Link href={`#/vms/${m.vmId}`}>{`VM ${m.vmId}`}</Link>
          {` missed its scheduled backups since ${formatDate(m.missedSince)} (last success: ${formatDate(m.lastSuccessAt)})`}
        </StatusIndicator>
      ))}
    </SpaceBetween>
  );
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
      <Container header={<Header variant="h2">Needs attention</Header>}>
        {data ? <NeedsAttention attention={data.attention} /> : <Box>Loading</Box>}
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
