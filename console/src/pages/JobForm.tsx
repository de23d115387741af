/**
 * Create or edit a backup job in a modal: name, datastore, priority, sequential or parallel, and
 * the VMs in the order they are backed up (added from a picker, moved with up and down buttons,
 * removed). The API's refusal shows next to Save.
 */
import Box from '@cloudscape-design/components/box';
import Button from '@cloudscape-design/components/button';
import FormField from '@cloudscape-design/components/form-field';
import Input from '@cloudscape-design/components/input';
import Modal from '@cloudscape-design/components/modal';
import SegmentedControl from '@cloudscape-design/components/segmented-control';
import Select from '@cloudscape-design/components/select';
import SpaceBetween from '@cloudscape-design/components/space-between';
import { useState } from 'react';
import { type BackupJob, call, type Datastore, type Vm } from '../api.ts';
import { DatastoreSelect } from '../DatastoreSelect.tsx';
import { type JobChoices, jobBody, jobChanges, move } from '../job-form.ts';
import { useSession } from '../session.tsx';

/** Props of {@link JobForm}: `job` to edit one, absent to create. */
export interface JobFormProps {
  job?: BackupJob;
  initial: JobChoices;
  vms: Vm[];
  datastores: Datastore[];
  onDismiss(): void;
  onSaved(job: BackupJob): void;
}

/** The job form dialog. */
export function JobForm({ job, initial, vms, datastores, onDismiss, onSaved }: JobFormProps) {
  const { token } = useSession();
  const [c, setC] = useState<JobChoices>(initial);
  const [tried, setTried] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const set = (patch: Partial<JobChoices>) => setC((v) => ({ ...v, ...patch }));
  const built = jobBody(c);
  const problem = (field: keyof JobChoices) =>
    tried && 'field' in built && built.field === field ? built.message : undefined;
  const vmName = (id: number) => vms.find((v) => v.id === id)?.name ?? `VM ${id}`;
  const addable = vms.filter((v) => !c.vmIds.includes(v.id));

  async function save() {
    setTried(true);
    if (!('body' in built)) return;
    setBusy(true);
    setError(undefined);
    try {
      onSaved(
        job
          ? await call(token, 'PATCH /jobs/{id}', {
              params: { id: job.id },
              body: jobChanges(job, built.body),
            })
          : await call(token, 'POST /jobs', { body: built.body }),
      );
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal
      visible
      onDismiss={onDismiss}
      header={job ? `Edit backup job ${job.id}` : 'Create backup job'}
      footer={
        <SpaceBetween size="xs">
          {error && (
            <div role="alert">
              <Box color="text-status-error">{error}</Box>
            </div>
          )}
          <Box float="right">
            <SpaceBetween direction="horizontal" size="xs">
              <Button variant="link" onClick={onDismiss}>
                Close
              </Button>
              <Button variant="primary" loading={busy} onClick={() => void save()}>
                {job ? 'Save job' : 'Create job'}
              </Button>
            </SpaceBetween>
          </Box>
        </SpaceBetween>
      }
    >
      <SpaceBetween size="m">
        <FormField label="Name" errorText={problem('name')}>
          <Input ariaLabel="Job name" value={c.name} onChange={({ detail }) => set({ name: detail.value })} />
        </FormField>
        <FormField label="Datastore" errorText={problem('datastoreId')}>
          <DatastoreSelect
            ariaLabel="Job datastore"
            datastores={datastores}
            value={c.datastoreId}
            onChange={(datastoreId) => set({ datastoreId })}
          />
        </FormField>
        <FormField
          label="Priority"
          description="0 to 99 (users up to 49): higher runs first"
          errorText={problem('priority')}
        >
          <Input
            ariaLabel="Priority"
            inputMode="numeric"
            value={c.priority}
            onChange={({ detail }) => set({ priority: detail.value })}
          />
        </FormField>
        <FormField label="Execution" description="One VM after another, or all at once">
          <SegmentedControl
            label="Execution"
            selectedId={c.execution}
            onChange={({ detail }) => set({ execution: detail.selectedId as JobChoices['execution'] })}
            options={[
              { id: 'SEQUENTIAL', text: 'Sequential' },
              { id: 'PARALLEL', text: 'Parallel' },
            ]}
          />
        </FormField>
        <FormField label="VMs, in backup order" errorText={problem('vmIds')}>
          <SpaceBetween size="xs">
            <ol aria-label="VMs in backup order" style={{ margin: 0, paddingLeft: 20 }}>
              {c.vmIds.map((id, index) => (
                <li key={id}>
                  <SpaceBetween direction="horizontal" size="xxs" alignItems="center">
                    <span>
                      {vmName(id)} ({id})
                    </span>
                    <Button
                      variant="icon"
                      iconName="angle-up"
                      ariaLabel={`Move ${vmName(id)} up`}
                      disabled={index === 0}
                      onClick={() => set({ vmIds: move(c.vmIds, index, -1) })}
                    />
                    <Button
                      variant="icon"
                      iconName="angle-down"
                      ariaLabel={`Move ${vmName(id)} down`}
                      disabled={index === c.vmIds.length - 1}
                      onClick={() => set({ vmIds: move(c.vmIds, index, 1) })}
                    />
                    <Button
                      variant="icon"
                      iconName="remove"
                      ariaLabel={`Remove ${vmName(id)}`}
                      onClick={() => set({ vmIds: c.vmIds.filter((v) => v !== id) })}
                    />
                  </SpaceBetween>
                </li>
              ))}
            </ol>
            <Select
              ariaLabel="Add a VM"
              selectedOption={null}
              placeholder="Add a VM"
              onChange={({ detail }) => set({ vmIds: [...c.vmIds, Number(detail.selectedOption.value)] })}
              options={addable.map((v) => ({
                value: String(v.id),
                label: v.name,
                description: `VM ${v.id}`,
              }))}
              empty="No other VM"
            />
          </SpaceBetween>
        </FormField>
      </SpaceBetween>
    </Modal>
  );
}
