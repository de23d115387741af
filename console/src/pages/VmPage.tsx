/**
 * One VM: its state, host and disks, its BACKUP_CONFIG (an editable form), its restore points as
 * a timeline of chains, its backup images, its scheduled backups, and the actions "Back up now"
 * (a datastore picker and the reset option, as `lifeboat vm backup ID -d DS [--reset]`) and
 * "Restore" (the wizard of every restore option).
 */
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import Button from '@cloudscape-design/components/button';
import Checkbox from '@cloudscape-design/components/checkbox';
import Container from '@cloudscape-design/components/container';
import FormField from '@cloudscape-design/components/form-field';
import Header from '@cloudscape-design/components/header';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import Link from '@cloudscape-design/components/link';
import Modal from '@cloudscape-design/components/modal';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Table from '@cloudscape-design/components/table';
import { useState } from 'react';
import { call, type Datastore, type Execution, type Host, type Image, list, type Vm } from '../api.ts';
import { DatastoreSelect } from '../DatastoreSelect.tsx';
import { formatBytes, formatDate } from '../format.ts';
import { useSession } from '../session.tsx';
import { useApi } from '../useApi.ts';
import { imageRow } from './ImagesPage.tsx';
import { BackupConfigForm } from './vm/BackupConfigForm.tsx';
import { RestorePoints } from './vm/RestorePoints.tsx';
import { RestoreWizard } from './vm/RestoreWizard.tsx';
import { Schedules } from './vm/Schedules.tsx';

async function load(token: string, id: number) {
  const [vm, images, datastores, hosts] = await Promise.all([
    call(token, 'GET /vms/{id}', { params: { id } }),
    list(token, 'GET /images', { query: { vmId: id } }).catch(() => [] as Image[]),
    list(token, 'GET /datastores').catch(() => [] as Datastore[]),
    list(token, 'GET /hosts').catch(() => [] as Host[]),
  ]);
  const own = images.filter((i) => i.vmId === id);
  return { vm, images: own, rows: own.map(imageRow), datastores, hosts };
}

/** The "Back up now" dialog: the API's refusal shown in it, the queued execution linked after. */
function BackupNow({
  vm,
  datastores,
  onQueued,
}: {
  vm: Vm;
  datastores: Datastore[];
  onQueued(e: Execution): void;
}) {
  const { token } = useSession();
  const [open, setOpen] = useState(false);
  const [datastoreId, setDatastoreId] = useState<number>();
  const [reset, setReset] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  async function submit() {
    if (datastoreId === undefined) return;
    setBusy(true);
    setError(undefined);
    try {
      const body = { datastoreId, reset };
      onQueued(await call(token, 'POST /vms/{id}/backup', { params: { id: vm.id }, body }));
      setOpen(false);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <Button variant="primary" onClick={() => setOpen(true)}>
        Back up now
      </Button>
      <Modal
        visible={open}
        onDismiss={() => setOpen(false)}
        header={`Back up ${vm.name}`}
        footer={
          <Box float="right">
            <SpaceBetween direction="horizontal" size="xs">
              <Button variant="link" onClick={() => setOpen(false)}>
                Close
              </Button>
              <Button variant="primary" onClick={submit} loading={busy} disabled={datastoreId === undefined}>
                Start backup
              </Button>
            </SpaceBetween>
          </Box>
        }
      >
        <SpaceBetween size="m">
          <FormField label="Datastore" errorText={error}>
            <DatastoreSelect
              ariaLabel="Datastore"
              datastores={datastores}
              value={datastoreId}
              onChange={setDatastoreId}
            />
          </FormField>
          <Checkbox checked={reset} onChange={({ detail }) => setReset(detail.checked)}>
            Start a new chain (a full backup even with MODE=INCREMENT)
          </Checkbox>
        </SpaceBetween>
      </Modal>
    </>
  );
}

/** The VM page of `id`. */
export function VmPage({ id }: { id: number }) {
  const { data, error, reload } = useApi((token) => load(token, id), 10_000);
  const [queued, setQueued] = useState<Execution>();
  const [restoring, setRestoring] = useState(false);
  const [restored, setRestored] = useState<Execution>();
  return (
    <SpaceBetween size="l">
      <Header
        variant="h1"
        actions={
          data && (
            <SpaceBetween direction="horizontal" size="xs">
              <Button onClick={() => setRestoring(true)}>Restore</Button>
              <BackupNow vm={data.vm} datastores={data.datastores} onQueued={setQueued} />
            </SpaceBetween>
          )
        }
      >
        {data ? `VM ${data.vm.id}: ${data.vm.name}` : `VM ${id}`}
      </Header>
      {error && (
        <Alert type="error" header="Could not load the VM">
          {error}
        </Alert>
      )}
      {queued && (
        <Alert type="success" header="Backup queued">
          Execution <Link href={`#/executions/${encodeURIComponent(queued.id)}`}>{queued.id}</Link> is{' '}
          {queued.state}.
        </Alert>
      )}
      {restored && (
        <Alert type="success" header="Restore queued">
          Execution <Link href={`#/executions/${encodeURIComponent(restored.id)}`}>{restored.id}</Link> is{' '}
          {restored.state}.
        </Alert>
      )}
      {data && restoring && (
        <RestoreWizard
          vm={data.vm}
          images={data.images}
          hosts={data.hosts}
          onDismiss={() => setRestoring(false)}
          onQueued={(e) => {
            setRestored(e);
            setRestoring(false);
          }}
        />
      )}
      {data && (
        <>
          <Container header={<Header variant="h2">Details</Header>}>
            <KeyValuePairs
              columns={3}
              items={[
                { label: 'State', value: data.vm.state },
                { label: 'Host', value: data.vm.hostId },
                { label: 'Domain', value: data.vm.domain },
                { label: 'Owner', value: `${data.vm.owner}:${data.vm.group}` },
                {
                  label: 'Disks',
                  value:
                    data.vm.disks.map((d) => `${d.target} ${formatBytes(d.size)} ${d.format}`).join(', ') ||
                    '-',
                },
              ]}
            />
          </Container>
          <BackupConfigForm key={data.vm.id} vm={data.vm} onSaved={reload} />
          <RestorePoints images={data.images} />
          <Table
            header={<Header variant="h2">Backups</Header>}
            items={data.rows}
            trackBy="id"
            columnDefinitions={[
              { id: 'id', header: 'Image', cell: (i) => i.id },
              { id: 'state', header: 'State', cell: (i) => i.state },
              { id: 'mode', header: 'Mode', cell: (i) => i.mode },
              { id: 'points', header: 'Restore points', cell: (i) => i.points },
              { id: 'size', header: 'Size', cell: (i) => formatBytes(i.size) },
              { id: 'last', header: 'Last point', cell: (i) => formatDate(i.last) },
            ]}
            empty={<Box textAlign="center">No backups yet</Box>}
          />
          <Schedules vm={data.vm} datastores={data.datastores} />
        </>
      )}
    </SpaceBetween>
  );
}
