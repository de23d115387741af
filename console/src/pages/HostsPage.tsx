/** Hosts: state, last seen, runner version and running backups against MAX_BACKUPS_HOST. */
import StatusIndicator, { type StatusIndicatorProps } from '@cloudscape-design/components/status-indicator';
import { call, type Execution, type Host, list } from '../api.ts';
import { formatDate } from '../format.ts';
import { ResourceTable } from '../ResourceTable.tsx';

/** A host row: the host with its running backups and its limit. */
interface HostRow {
  id: number;
  name: string;
  state: Host['state'];
  lastSeen: string | undefined;
  runner: string;
  active: number;
  max: number;
}

const STATE: Record<Host['state'], StatusIndicatorProps.Type> = {
  INIT: 'pending',
  MONITORED: 'success',
  ERROR: 'error',
  DISABLED: 'stopped',
  OFFLINE: 'warning',
};

async function loadRows(token: string): Promise<HostRow[]> {
  // Executions: a non-admin sees only their own, so "active" counts what the caller may see.
  const [hosts, running, config] = await Promise.all([
    list(token, 'GET /hosts'),
    list(token, 'GET /executions', { query: { state: 'RUNNING' } }).catch(() => [] as Execution[]),
    call(token, 'GET /config') as Promise<{ maxBackupsHost: number }>,
  ]);
  return hosts.map((h) => ({
    id: h.id,
    name: h.name,
    state: h.state,
    lastSeen: h.lastHeartbeat,
    runner: h.runnerVersion ?? '-',
    active: running.filter((e) => e.hostId === h.id && e.kind === 'backup').length,
    max: h.maxBackupsHost ?? config.maxBackupsHost,
  }));
}

/** The hosts page. */
export function HostsPage() {
  return (
    <ResourceTable<HostRow>
      title="Hosts"
      noun="hosts"
      load={loadRows}
      refreshMs={10_000}
      trackBy="id"
      columns={[
        { id: 'id', header: 'ID', cell: (h) => h.id, sortingField: 'id' },
        { id: 'name', header: 'Name', cell: (h) => h.name, sortingField: 'name' },
        {
          id: 'state',
          header: 'State',
          cell: (h) => <StatusIndicator type={STATE[h.state]}>{h.state}</StatusIndicator>,
          sortingField: 'state',
        },
        { id: 'seen', header: 'Last seen', cell: (h) => formatDate(h.lastSeen), sortingField: 'lastSeen' },
        { id: 'runner', header: 'Runner', cell: (h) => h.runner, sortingField: 'runner' },
        {
          id: 'backups',
          header: 'Backups running',
          cell: (h) => `${h.active} of ${h.max}`,
          sortingField: 'active',
        },
      ]}
    />
  );
}
