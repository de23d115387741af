/** VMs: state, host, BACKUP_CONFIG summary and last backup (time and size) of each VM the caller may see. */
import Link from '@cloudscape-design/components/link';
import StatusIndicator, { type StatusIndicatorProps } from '@cloudscape-design/components/status-indicator';
import { type Host, type Image, list, type Vm } from '../api.ts';
import { configSummary, formatBytes, formatDate } from '../format.ts';
import { ResourceTable } from '../ResourceTable.tsx';
import { imageRow } from './ImagesPage.tsx';

/** A VM row: the VM with its host's name and its latest backup. */
interface VmRow {
  id: number;
  name: string;
  state: Vm['state'];
  host: string;
  config: string;
  lastBackup: string | undefined;
  lastSize: number | undefined;
}

const STATE: Record<Vm['state'], StatusIndicatorProps.Type> = {
  RUNNING: 'success',
  POWEROFF: 'stopped',
  SUSPENDED: 'pending',
  UNKNOWN: 'warning',
  GONE: 'error',
};

/** When an image last got a restore point: its newest increment, else its creation. */
function lastPoint(image: Image): string {
  return imageRow(image).last;
}

async function loadRows(token: string): Promise<VmRow[]> {
  // Hosts may be hidden from a non-admin: the row then shows the host's id.
  const [vms, images, hosts] = await Promise.all([
    list(token, 'GET /vms'),
    list(token, 'GET /images').catch(() => [] as Image[]),
    list(token, 'GET /hosts').catch(() => [] as Host[]),
  ]);
  const hostName = new Map(hosts.map((h) => [h.id, h.name]));
  return vms.map((vm) => {
    const latest = images
      .filter((img) => img.vmId === vm.id)
      .sort((a, b) => lastPoint(a).localeCompare(lastPoint(b)))
      .at(-1);
    return {
      id: vm.id,
      name: vm.name,
      state: vm.state,
      host: hostName.get(vm.hostId) ?? `host ${vm.hostId}`,
      config: configSummary(vm.backups?.BACKUP_CONFIG),
      lastBackup: latest ? lastPoint(latest) : undefined,
      lastSize: latest?.size,
    };
  });
}

/** The VMs page. */
export function VmsPage() {
  return (
    <ResourceTable<VmRow>
      title="VMs"
      noun="VMs"
      load={loadRows}
      trackBy="id"
      columns={[
        { id: 'id', header: 'ID', cell: (r) => r.id, sortingField: 'id' },
        {
          id: 'name',
          header: 'Name',
          cell: (r) => <Link href={`#/vms/${r.id}`}>{r.name}</Link>,
          sortingField: 'name',
        },
        {
          id: 'state',
          header: 'State',
          cell: (r) => <StatusIndicator type={STATE[r.state]}>{r.state}</StatusIndicator>,
          sortingField: 'state',
        },
        { id: 'host', header: 'Host', cell: (r) => r.host, sortingField: 'host' },
        { id: 'config', header: 'Backup config', cell: (r) => r.config },
        {
          id: 'last',
          header: 'Last backup',
          cell: (r) => (r.lastBackup ? `${formatDate(r.lastBackup)} (${formatBytes(r.lastSize)})` : 'never'),
          sortingField: 'lastBackup',
        },
      ]}
    />
  );
}
