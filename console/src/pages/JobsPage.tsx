/**
 * Backup jobs: the table (VMs, datastore, priority, sequential or parallel, last run), create
 * and edit (./JobForm.tsx), and for the selected job its OUTDATED, BACKING_UP, UPDATED and ERROR
 * lists with "Run now" and "Retry"; the API's refusal shows next to the action.
 */
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import Button from '@cloudscape-design/components/button';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import SpaceBetween from '@cloudscape-design/components/space-between';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import Table from '@cloudscape-design/components/table';
import { useState } from 'react';
import { type BackupJob, call, type Datastore, list, type Vm } from '../api.ts';
import { formatDate } from '../format.ts';
import { choicesOf } from '../job-form.ts';
import { useSession } from '../session.tsx';
import { useApi } from '../useApi.ts';
import { JobForm } from './JobForm.tsx';

async function load(token: string) {
  const [jobs, vms, datastores] = await Promise.all([
    list(token, 'GET /jobs'),
    list(token, 'GET /vms').catch(() => [] as Vm[]),
    list(token, 'GET /datastores').catch(() => [] as Datastore[]),
  ]);
  return { jobs, vms, datastores };
}

const LISTS = [
  { key: 'outdatedVms', title: 'OUTDATED', type: 'pending' },
  { key: 'backingUpVms', title: 'BACKING_UP', type: 'in-progress' },
  { key: 'updatedVms', title: 'UPDATED', type: 'success' },
  { key: 'errorVms', title: 'ERROR', type: 'error' },
] as const;

/** The state of a job in a word: running while VMs wait or back up. */
function jobState(job: BackupJob): string {
  if (job.backingUpVms.length || job.outdatedVms.length) return 'RUNNING';
  if (job.errorVms.length) return 'ERROR';
  return job.lastRunAt ? 'DONE' : 'NEVER RUN';
}

/** The selected job: its four lists and its actions. */
function JobDetail({ job, vms, onChanged }: { job: BackupJob; vms: Vm[]; onChanged(): void }) {
  const { token } = useSession();
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<string>();
  const vmName = (id: number) => vms.find((v) => v.id === id)?.name ?? `VM ${id}`;

  async function act(what: 'run' | 'retry') {
    setBusy(what);
    setError(undefined);
    setDone(undefined);
    try {
      const op = what === 'run' ? 'POST /jobs/{id}/backup' : 'POST /jobs/{id}/retry';
      const answer = (await call(token, op, { params: { id: job.id } })) as { executions?: unknown[] };
      setDone(
        `${what === 'run' ? 'Run' : 'Retry'} started: ${answer.executions?.length ?? 0} backups queued`,
      );
      onChanged();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(undefined);
    }
  }

  return (
    <Container
      header={
        <Header
          variant="h2"
          description={`${job.execution}, priority ${job.priority}, last run ${formatDate(job.lastRunAt)}`}
          actions={
            <SpaceBetween direction="horizontal" size="xs">
              <Button
                onClick={() => void act('retry')}
                loading={busy === 'retry'}
                disabled={!job.errorVms.length}
              >
                Retry
              </Button>
              <Button variant="primary" onClick={() => void act('run')} loading={busy === 'run'}>
                Run now
              </Button>
            </SpaceBetween>
          }
        >
          Job {job.id}: {job.name}
        </Header>
      }
    >
      <SpaceBetween size="m">
        {error && (
          <Alert type="error" header="The API refused">
            {error}
          </Alert>
        )}
        {done && <Alert type="success">{done}</Alert>}
        <ColumnLayout columns={4} variant="text-grid" minColumnWidth={140}>
          {LISTS.map((l) => (
            <section key={l.key} aria-label={`${l.title} VMs`}>
              <Box variant="awsui-key-label">
                <StatusIndicator type={l.type}>{l.title}</StatusIndicator>
              </Box>
              {job[l.key].length ? (
                <ul style={{ margin: 0, paddingLeft: 18 }}>
                  {job[l.key].map((id) => (
                    <li key={id}>{vmName(id)}</li>
                  ))}
                </ul>
              ) : (
                <Box color="text-body-secondary">none</Box>
              )}
            </section>
          ))}
        </ColumnLayout>
      </SpaceBetween>
    </Container>
  );
}

/** The backup jobs page. */
export function JobsPage() {
  const { data, error, loading, reload } = useApi(load, 5000);
  const [selectedId, setSelectedId] = useState<number>();
  const [editing, setEditing] = useState<BackupJob | 'new'>();
  const selected = data?.jobs.find((j) => j.id === selectedId);
  const vmName = (id: number) => data?.vms.find((v) => v.id === id)?.name ?? `VM ${id}`;
  return (
    <SpaceBetween size="l">
      {error && (
        <Alert type="error" header="Could not load the backup jobs">
          {error}
        </Alert>
      )}
      <Table
        variant="full-page"
        header={
          <Header
            variant="awsui-h1-sticky"
            counter={data ? `(${data.jobs.length})` : undefined}
            actions={
              <SpaceBetween direction="horizontal" size="xs">
                <Button iconName="refresh" ariaLabel="Refresh backup jobs" onClick={reload} />
                <Button disabled={!selected} onClick={() => setEditing(selected)}>
                  Edit
                </Button>
                <Button variant="primary" onClick={() => setEditing('new')}>
                  Create job
                </Button>
              </SpaceBetween>
            }
          >
            Backup jobs
          </Header>
        }
        loading={loading && !data}
        loadingText="Loading backup jobs"
        items={data?.jobs ?? []}
        trackBy="id"
        selectionType="single"
        selectedItems={selected ? [selected] : []}
        onSelectionChange={({ detail }) => setSelectedId(detail.selectedItems[0]?.id)}
        ariaLabels={{
          selectionGroupLabel: 'Backup jobs',
          itemSelectionLabel: (_, job) => `Select job ${job.name}`,
          allItemsSelectionLabel: () => 'Select all',
        }}
        columnDefinitions={[
          { id: 'id', header: 'ID', cell: (j) => j.id },
          { id: 'name', header: 'Name', cell: (j) => j.name },
          { id: 'state', header: 'State', cell: jobState },
          { id: 'vms', header: 'VMs in order', cell: (j) => j.vmIds.map(vmName).join(' → ') },
          { id: 'ds', header: 'Datastore', cell: (j) => j.datastoreId },
          { id: 'priority', header: 'Priority', cell: (j) => j.priority },
          { id: 'execution', header: 'Execution', cell: (j) => j.execution },
          { id: 'last', header: 'Last run', cell: (j) => formatDate(j.lastRunAt) },
        ]}
        empty={<Box textAlign="center">No backup jobs</Box>}
      />
      {selected && data && <JobDetail job={selected} vms={data.vms} onChanged={reload} />}
      {editing && data && (
        <JobForm
          job={editing === 'new' ? undefined : editing}
          initial={
            editing === 'new'
              ? {
                  name: '',
                  vmIds: [],
                  datastoreId: data.datastores[0]?.id,
                  priority: '0',
                  execution: 'SEQUENTIAL',
                }
              : choicesOf(editing)
          }
          vms={data.vms}
          datastores={data.datastores}
          onDismiss={() => setEditing(undefined)}
          onSaved={(job) => {
            setEditing(undefined);
            setSelectedId(job.id);
            reload();
          }}
        />
      )}
    </SpaceBetween>
  );
}
