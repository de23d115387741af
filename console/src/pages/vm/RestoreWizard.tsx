/**
 * The restore wizard (Cloudscape Wizard), every option of `POST /images/{id}/restore`: the
 * restore point (image and increment), one disk or all, then a new VM (name, host, folder,
 * NO_IP, NO_NIC, start) or in place (the VM's name typed to confirm the overwrite), then a
 * review. The API's refusal shows on the last step, next to Restore.
 */
import Box from '@cloudscape-design/components/box';
import Checkbox from '@cloudscape-design/components/checkbox';
import Container from '@cloudscape-design/components/container';
import FormField from '@cloudscape-design/components/form-field';
import Header from '@cloudscape-design/components/header';
import Input from '@cloudscape-design/components/input';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import Modal from '@cloudscape-design/components/modal';
import RadioGroup from '@cloudscape-design/components/radio-group';
import Select from '@cloudscape-design/components/select';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Wizard from '@cloudscape-design/components/wizard';
import { useState } from 'react';
import { call, type Execution, type Host, type Image, type Vm } from '../../api.ts';
import { formatBytes, formatDate } from '../../format.ts';
import { type RestoreChoices, restoreBody, restoreProblems } from '../../restore-options.ts';
import { useSession } from '../../session.tsx';
import { chainPoints } from './RestorePoints.tsx';

const START: RestoreChoices = {
  target: 'new',
  name: '',
  targetDir: '',
  noIp: false,
  noNic: false,
  start: false,
  confirmation: '',
};

/** Props of {@link RestoreWizard}. */
export interface RestoreWizardProps {
  vm: Vm;
  images: Image[];
  hosts: Host[];
  onDismiss(): void;
  onQueued(execution: Execution): void;
}

/** The wizard, in a modal while open. */
export function RestoreWizard({ vm, images, hosts, onDismiss, onQueued }: RestoreWizardProps) {
  const { token, user } = useSession();
  const ready = images.filter((i) => i.state === 'READY');
  const [imageId, setImageId] = useState<number | undefined>(ready[0]?.id);
  const [choices, setChoices] = useState<RestoreChoices>(START);
  const [step, setStep] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  // Set when Next was refused: the reasons show even in fields not touched yet.
  const [shown, setShown] = useState(false);
  const image = ready.find((i) => i.id === imageId);
  const points = image ? chainPoints(image) : [];
  const problems = restoreProblems(choices, vm.name);
  const set = (patch: Partial<RestoreChoices>) => setChoices((c) => ({ ...c, ...patch }));
  const pointLabel = (id: number | undefined) => {
    const point = id === undefined ? points.at(-1) : points.find((p) => p.id === id);
    return point
      ? `Point ${point.id} ${point.type}, ${formatBytes(point.size)}, ${formatDate(point.date)}`
      : '-';
  };
  const hostName = (id: number | undefined) =>
    id === undefined ? `The VM's host (${vm.hostId})` : (hosts.find((h) => h.id === id)?.name ?? String(id));

  async function submit() {
    if (!image) return;
    setBusy(true);
    setError(undefined);
    try {
      onQueued(
        await call(token, 'POST /images/{id}/restore', {
          params: { id: image.id },
          body: restoreBody(choices),
        }),
      );
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const pointStep = (
    <Container header={<Header variant="h2">Restore point</Header>}>
      <SpaceBetween size="m">
        <FormField label="Backup image" description="A chain of the VM's READY backups">
          <Select
            ariaLabel="Backup image"
            selectedOption={
              image ? { value: String(image.id), label: `Image ${image.id} (${image.name})` } : null
            }
            onChange={({ detail }) => {
              setImageId(Number(detail.selectedOption.value));
              set({ incrementId: undefined });
            }}
            options={ready.map((i) => ({
              value: String(i.id),
              label: `Image ${i.id} (${i.name})`,
              description: `${i.mode}, ${formatBytes(i.size)}, ${formatDate(i.createdAt)}`,
            }))}
            empty="No READY backup to restore"
          />
        </FormField>
        <FormField label="Point" description="The chain up to this point is restored (default: the last one)">
          <Select
            ariaLabel="Point"
            selectedOption={{
              value: String(choices.incrementId ?? ''),
              label: pointLabel(choices.incrementId),
            }}
            onChange={({ detail }) =>
              set({
                incrementId: detail.selectedOption.value ? Number(detail.selectedOption.value) : undefined,
              })
            }
            options={[
              { value: '', label: `Last point (${pointLabel(undefined)})` },
              ...points.map((p) => ({ value: String(p.id), label: pointLabel(p.id) })),
            ]}
          />
        </FormField>
        <FormField label="Disks" description="One disk restores a disk image only (no VM is defined)">
          <Select
            ariaLabel="Disks"
            selectedOption={{
              value: String(choices.diskId ?? ''),
              label: choices.diskId === undefined ? 'Every disk' : `Disk ${choices.diskId}`,
            }}
            onChange={({ detail }) =>
              set({ diskId: detail.selectedOption.value ? Number(detail.selectedOption.value) : undefined })
            }
            options={[
              { value: '', label: 'Every disk' },
              ...vm.disks.map((d) => ({ value: String(d.id), label: `Disk ${d.id}`, description: d.target })),
            ]}
          />
        </FormField>
      </SpaceBetween>
    </Container>
  );

  const targetStep = (
    <Container header={<Header variant="h2">Target</Header>}>
      <SpaceBetween size="m">
        <FormField label="Restore as">
          <RadioGroup
            ariaLabel="Restore as"
            value={choices.target}
            onChange={({ detail }) => set({ target: detail.value as RestoreChoices['target'] })}
            items={[
              { value: 'new', label: 'A new VM or disk files', description: 'The VM itself is left alone' },
              {
                value: 'inPlace',
                label: `In place, over ${vm.name}'s own disks`,
                description: 'The VM must be powered off; its current disks are overwritten',
              },
            ]}
          />
        </FormField>
        {choices.target === 'new' ? (
          <>
            <FormField
              label="Name"
              description={`Of the new VM; its disks are <name>-disk-<n>. Default: ${vm.id}-${image?.id ?? '<image>'}`}
              errorText={problems.name}
            >
              <Input
                ariaLabel="Name"
                value={choices.name}
                onChange={({ detail }) => set({ name: detail.value })}
              />
            </FormField>
            <FormField
              label="Host"
              description={
                user.admin
                  ? 'Whose runner writes the disks. Naming a host defines the VM there'
                  : "The VM's host writes the disks (only an admin may name another host)"
              }
            >
              <Select
                disabled={!user.admin}
                ariaLabel="Host"
                selectedOption={{ value: String(choices.hostId ?? ''), label: hostName(choices.hostId) }}
                onChange={({ detail }) =>
                  set({
                    hostId: detail.selectedOption.value ? Number(detail.selectedOption.value) : undefined,
                  })
                }
                options={[
                  { value: '', label: hostName(undefined) },
                  ...hosts.map((h) => ({ value: String(h.id), label: h.name, description: h.state })),
                ]}
              />
            </FormField>
            <FormField
              label="Folder"
              description="On that host, for the disks. Relative: under its first restore root. Default: <name> there"
              errorText={problems.targetDir}
            >
              <Input
                ariaLabel="Folder"
                value={choices.targetDir}
                placeholder="restored/web"
                onChange={({ detail }) => set({ targetDir: detail.value })}
              />
            </FormField>
            <Checkbox
              checked={choices.noIp}
              onChange={({ detail }) => set({ noIp: detail.checked })}
              description="NICs and networks stay"
            >
              NO_IP: do not keep the IP addresses
            </Checkbox>
            <Checkbox checked={choices.noNic} onChange={({ detail }) => set({ noNic: detail.checked })}>
              NO_NIC: do not keep the NICs at all
            </Checkbox>
            <FormField errorText={problems.start}>
              <Checkbox
                checked={choices.start}
                onChange={({ detail }) => set({ start: detail.checked })}
                description="Defines the VM on the host and starts it"
              >
                Start the restored VM
              </Checkbox>
            </FormField>
          </>
        ) : (
          <FormField
            label={`Type ${vm.name} to confirm`}
            description="An in-place restore overwrites the VM's disks: this cannot be undone"
            errorText={(shown || choices.confirmation) && problems.confirmation}
          >
            <Input
              ariaLabel="Confirm the VM name"
              value={choices.confirmation}
              onChange={({ detail }) => set({ confirmation: detail.value })}
            />
          </FormField>
        )}
      </SpaceBetween>
    </Container>
  );

  const body = restoreBody(choices);
  const reviewStep = (
    <Container header={<Header variant="h2">Review</Header>}>
      <KeyValuePairs
        columns={2}
        items={[
          { label: 'Image', value: image ? `${image.id} (${image.name})` : '-' },
          { label: 'Point', value: pointLabel(choices.incrementId) },
          { label: 'Disks', value: choices.diskId === undefined ? 'Every disk' : `Disk ${choices.diskId}` },
          ...(choices.target === 'inPlace'
            ? [{ label: 'Target', value: `In place, over ${vm.name}` }]
            : [
                { label: 'Name', value: body.name ?? `${vm.id}-${image?.id ?? ''} (default)` },
                { label: 'Host', value: hostName(choices.hostId) },
                { label: 'Folder', value: body.targetDir ?? '(default)' },
                { label: 'NO_IP', value: choices.noIp ? 'Yes' : 'No' },
                { label: 'NO_NIC', value: choices.noNic ? 'Yes' : 'No' },
                { label: 'Start', value: choices.start ? 'Yes' : 'No' },
              ]),
        ]}
      />
    </Container>
  );

  const blocked = [image === undefined, Object.keys(problems).length > 0, false];
  return (
    <Modal visible onDismiss={onDismiss} size="large" header={`Restore ${vm.name}`}>
      <Wizard
        activeStepIndex={step}
        onNavigate={({ detail }) => {
          if (detail.requestedStepIndex > step && blocked[step]) {
            setShown(true);
            return;
          }
          setStep(detail.requestedStepIndex);
        }}
        onCancel={onDismiss}
        onSubmit={() => void submit()}
        isLoadingNextStep={busy}
        submitButtonText="Restore"
        i18nStrings={{
          stepNumberLabel: (n) => `Step ${n}`,
          collapsedStepsLabel: (n, total) => `Step ${n} of ${total}`,
          navigationAriaLabel: 'Restore steps',
          cancelButton: 'Cancel',
          previousButton: 'Previous',
          nextButton: 'Next',
          optional: 'optional',
        }}
        steps={[
          {
            title: 'Restore point',
            content: pointStep,
            errorText: image ? undefined : 'No READY backup to restore',
          },
          { title: 'Target', content: targetStep },
          {
            title: 'Review and restore',
            content: (
              <SpaceBetween size="m">
                {reviewStep}
                <Box variant="small">The restore runs as an execution; its page shows the progress.</Box>
              </SpaceBetween>
            ),
            errorText: error,
          },
        ]}
      />
    </Modal>
  );
}
