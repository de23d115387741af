/**
 * A VM's scheduled backups: the list (next run, repeat, end, runs, last error), "Add" with the
 * schedule builder (../../schedule-builder.ts) and delete; the API's refusal shows next to the
 * action that failed.
 */
import Box from '@cloudscape-design/components/box';
import Button from '@cloudscape-design/components/button';
import Checkbox from '@cloudscape-design/components/checkbox';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import DateInput from '@cloudscape-design/components/date-input';
import FormField from '@cloudscape-design/components/form-field';
import Header from '@cloudscape-design/components/header';
import Input from '@cloudscape-design/components/input';
import Modal from '@cloudscape-design/components/modal';
import Multiselect from '@cloudscape-design/components/multiselect';
import SegmentedControl from '@cloudscape-design/components/segmented-control';
import Select from '@cloudscape-design/components/select';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Table from '@cloudscape-design/components/table';
import TimeInput from '@cloudscape-design/components/time-input';
import { useState } from 'react';
import { call, type Datastore, list, type ScheduledAction, type Vm } from '../../api.ts';
import { DatastoreSelect } from '../../DatastoreSelect.tsx';
import { formatDate } from '../../format.ts';
import { describeSpec, type ScheduleChoices, scheduleBody, UNITS, WEEKDAYS } from '../../schedule-builder.ts';
import { useSession } from '../../session.tsx';
import { useApi } from '../../useApi.ts';

const START: ScheduleChoices = {
  reset: false,
  when: 'now',
  after: '1',
  unit: 'hours',
  date: '',
  time: '02:00',
  repeat: 'daily',
  days: [],
  cron: '0 2 * * ? *',
  end: 'never',
  count: '',
  endDate: '',
};

const REPEATS: ScheduleChoices['repeat'][] = ['once', 'hourly', 'daily', 'weekly', 'monthly', 'cron'];

/** The "Add schedule" dialog. */
function AddSchedule({ vm, datastores, onAdded }: { vm: Vm; datastores: Datastore[]; onAdded(): void }) {
  const { token } = useSession();
  const [open, setOpen] = useState(false);
  const [c, setC] = useState<ScheduleChoices>({ ...START, datastoreId: datastores[0]?.id });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [tried, setTried] = useState(false);
  const set = (patch: Partial<ScheduleChoices>) => setC((v) => ({ ...v, ...patch }));
  const built = scheduleBody(c);
  const problem = (field: string) =>
    tried && 'field' in built && built.field === field ? built.message : undefined;

  async function submit() {
    setTried(true);
    if (!('body' in built)) return;
    setBusy(true);
    setError(undefined);
    try {
      await call(token, 'POST /vms/{id}/schedules', { params: { id: vm.id }, body: built.body });
      setOpen(false);
      setTried(false);
      onAdded();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const dayOptions =
    c.repeat === 'weekly'
      ? WEEKDAYS.map((d, i) => ({ value: String(i), label: d }))
      : Array.from({ length: 31 }, (_, i) => ({ value: String(i + 1), label: String(i + 1) }));
  return (
    <>
      <Button onClick={() => setOpen(true)}>Add schedule</Button>
      <Modal
        visible={open}
        onDismiss={() => setOpen(false)}
        header={`Schedule backups of ${vm.name}`}
        footer={
          <Box float="right">
            <SpaceBetween direction="horizontal" size="xs">
              <Button variant="link" onClick={() => setOpen(false)}>
                Close
              </Button>
              <Button variant="primary" loading={busy} onClick={() => void submit()}>
                Add schedule
              </Button>
            </SpaceBetween>
          </Box>
        }
      >
        <SpaceBetween size="m">
          <FormField label="Datastore" errorText={problem('datastore')}>
            <DatastoreSelect
              ariaLabel="Schedule datastore"
              datastores={datastores}
              value={c.datastoreId}
              onChange={(datastoreId) => set({ datastoreId })}
            />
          </FormField>
          <FormField label="Start">
            <SegmentedControl
              label="Start"
              selectedId={c.when}
              onChange={({ detail }) => set({ when: detail.selectedId as ScheduleChoices['when'] })}
              options={[
                { id: 'now', text: 'Now' },
                { id: 'after', text: 'After' },
                { id: 'at', text: 'At' },
              ]}
            />
          </FormField>
          {c.when === 'after' && (
            <FormField label="After" errorText={problem('after')}>
              <ColumnLayout columns={2}>
                <Input
                  ariaLabel="After how many"
                  inputMode="numeric"
                  value={c.after}
                  onChange={({ detail }) => set({ after: detail.value })}
                />
                <Select
                  ariaLabel="Unit"
                  selectedOption={{ value: c.unit, label: c.unit }}
                  onChange={({ detail }) =>
                    set({ unit: detail.selectedOption.value as ScheduleChoices['unit'] })
                  }
                  options={Object.keys(UNITS).map((u) => ({ value: u, label: u }))}
                />
              </ColumnLayout>
            </FormField>
          )}
          {c.when === 'at' && (
            <FormField label="At (UTC)" errorText={problem('at')}>
              <ColumnLayout columns={2}>
                <DateInput
                  ariaLabel="Date (YYYY-MM-DD)"
                  placeholder="YYYY/MM/DD"
                  value={c.date}
                  onChange={({ detail }) => set({ date: detail.value })}
                />
                <TimeInput
                  ariaLabel="Time (HH:MM, UTC)"
                  format="hh:mm"
                  placeholder="hh:mm"
                  value={c.time}
                  onChange={({ detail }) => set({ time: detail.value })}
                />
              </ColumnLayout>
            </FormField>
          )}
          <FormField label="Repeat" description="All in UTC">
            <Select
              ariaLabel="Repeat"
              selectedOption={{ value: c.repeat, label: c.repeat }}
              onChange={({ detail }) =>
                set({ repeat: detail.selectedOption.value as ScheduleChoices['repeat'], days: [] })
              }
              options={REPEATS.map((r) => ({ value: r, label: r }))}
            />
          </FormField>
          {(c.repeat === 'weekly' || c.repeat === 'monthly') && (
            <FormField
              label={c.repeat === 'weekly' ? 'Days of the week' : 'Days of the month'}
              errorText={problem('days')}
            >
              <Multiselect
                ariaLabel="Days"
                selectedOptions={dayOptions.filter((o) => c.days.includes(Number(o.value)))}
                onChange={({ detail }) => set({ days: detail.selectedOptions.map((o) => Number(o.value)) })}
                options={dayOptions}
                placeholder="Choose days"
              />
            </FormField>
          )}
          {c.repeat === 'cron' && (
            <FormField
              label="Cron expression"
              description="AWS cron: minutes hours day-of-month month day-of-week year"
              errorText={problem('cron')}
            >
              <Input
                ariaLabel="Cron expression"
                value={c.cron}
                onChange={({ detail }) => set({ cron: detail.value })}
              />
            </FormField>
          )}
          {c.repeat !== 'once' && (
            <FormField label="End">
              <SegmentedControl
                label="End"
                selectedId={c.end}
                onChange={({ detail }) => set({ end: detail.selectedId as ScheduleChoices['end'] })}
                options={[
                  { id: 'never', text: 'Never' },
                  { id: 'count', text: 'After runs' },
                  { id: 'date', text: 'On date' },
                ]}
              />
            </FormField>
          )}
          {c.repeat !== 'once' && c.end === 'count' && (
            <FormField label="Number of runs" errorText={problem('count')}>
              <Input
                ariaLabel="Number of runs"
                inputMode="numeric"
                value={c.count}
                onChange={({ detail }) => set({ count: detail.value })}
              />
            </FormField>
          )}
          {c.repeat !== 'once' && c.end === 'date' && (
            <FormField label="Last day" errorText={problem('endDate')}>
              <DateInput
                ariaLabel="Last day"
                placeholder="YYYY/MM/DD"
                value={c.endDate}
                onChange={({ detail }) => set({ endDate: detail.value })}
              />
            </FormField>
          )}
          <Checkbox checked={c.reset} onChange={({ detail }) => set({ reset: detail.checked })}>
            Start a new chain each time (reset)
          </Checkbox>
          {error && (
            <div role="alert">
              <Box color="text-status-error">{error}</Box>
            </div>
          )}
        </SpaceBetween>
      </Modal>
    </>
  );
}

/** The schedules table of `vm`. */
export function Schedules({ vm, datastores }: { vm: Vm; datastores: Datastore[] }) {
  const { token } = useSession();
  const { data, error, loading, reload } = useApi((t) =>
    list(t, 'GET /vms/{id}/schedules', { params: { id: vm.id } }),
  );
  const [deleteError, setDeleteError] = useState<string>();

  async function remove(s: ScheduledAction) {
    setDeleteError(undefined);
    try {
      await call(token, 'DELETE /vms/{id}/schedules/{schedId}', { params: { id: vm.id, schedId: s.id } });
      reload();
    } catch (err) {
      setDeleteError(err instanceof Error ? err.message : String(err));
    }
  }

  return (
    <Table
      header={
        <Header
          variant="h2"
          counter={data ? `(${data.length})` : undefined}
          description={deleteError ?? error}
          actions={<AddSchedule vm={vm} datastores={datastores} onAdded={reload} />}
        >
          Scheduled backups
        </Header>
      }
      loading={loading && !data}
      loadingText="Loading schedules"
      items={data ?? []}
      trackBy="id"
      columnDefinitions={[
        { id: 'id', header: 'ID', cell: (s) => s.id },
        { id: 'next', header: 'Next run', cell: (s) => formatDate(s.nextRunAt) },
        { id: 'repeat', header: 'Repeat', cell: (s) => describeSpec(s.spec) },
        { id: 'ds', header: 'Datastore', cell: (s) => s.datastoreId ?? '-' },
        { id: 'runs', header: 'Runs', cell: (s) => s.runs },
        { id: 'last', header: 'Last error', cell: (s) => s.lastError ?? '-' },
        {
          id: 'delete',
          header: 'Actions',
          cell: (s) => (
            <Button
              variant="inline-link"
              ariaLabel={`Delete schedule ${s.id}`}
              onClick={() => void remove(s)}
            >
              Delete
            </Button>
          ),
        },
      ]}
      empty={<Box textAlign="center">No scheduled backups</Box>}
    />
  );
}
