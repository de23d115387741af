/**
 * Create or edit a datastore (admins): name, driver, attributes as `KEY=VALUE` lines and the
 * driver's secrets in password fields, write-only (never filled from the API, which answers only
 * their names; left blank on an edit, the stored one is kept). The API's refusal is shown in the
 * dialog, next to the action.
 */
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import Button from '@cloudscape-design/components/button';
import FormField from '@cloudscape-design/components/form-field';
import Input from '@cloudscape-design/components/input';
import Modal from '@cloudscape-design/components/modal';
import SegmentedControl from '@cloudscape-design/components/segmented-control';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Textarea from '@cloudscape-design/components/textarea';
import { useState } from 'react';
import { call, type Datastore } from '../api.ts';
import { attributeLines, attributesToSend, SECRET_ATTRIBUTES } from '../datastore-form.ts';
import { useSession } from '../session.tsx';

/** The "Create datastore" button (or "Edit" with `existing`) and its dialog. */
export function DatastoreForm({ existing, onSaved }: { existing?: Datastore; onSaved(d: Datastore): void }) {
  const { token } = useSession();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(existing?.name ?? '');
  const [driver, setDriver] = useState<Datastore['driver']>(existing?.driver ?? 'restic');
  const [lines, setLines] = useState(existing ? attributeLines(existing.attributes) : '');
  const [secrets, setSecrets] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  async function submit() {
    const sent = attributesToSend(driver, lines, secrets);
    if ('problem' in sent) return setError(sent.problem);
    setBusy(true);
    setError(undefined);
    try {
      const saved = existing
        ? await call(token, 'PATCH /datastores/{id}', {
            params: { id: existing.id },
            body: { name, attributes: sent.attributes },
          })
        : await call(token, 'POST /datastores', { body: { name, driver, attributes: sent.attributes } });
      setSecrets({});
      setOpen(false);
      onSaved(saved);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const verb = existing ? 'Save' : 'Create datastore';
  return (
    <>
      <Button onClick={() => setOpen(true)}>{existing ? 'Edit' : 'Create datastore'}</Button>
      <Modal
        visible={open}
        onDismiss={() => setOpen(false)}
        header={existing ? `Edit datastore ${existing.name}` : 'Create a datastore'}
        footer={
          <Box float="right">
            <SpaceBetween direction="horizontal" size="xs">
              <Button variant="link" onClick={() => setOpen(false)}>
                Cancel
              </Button>
              <Button variant="primary" loading={busy} onClick={() => void submit()}>
                {verb}
              </Button>
            </SpaceBetween>
          </Box>
        }
      >
        <SpaceBetween size="m">
          <FormField label="Name">
            <Input ariaLabel="Datastore name" value={name} onChange={({ detail }) => setName(detail.value)} />
          </FormField>
          <FormField label="Driver" description={existing ? 'A datastore keeps its driver' : undefined}>
            <SegmentedControl
              label="Driver"
              selectedId={driver}
              onChange={({ detail }) => !existing && setDriver(detail.selectedId as Datastore['driver'])}
              options={[
                { id: 'restic', text: 'restic', disabled: existing !== undefined && driver !== 'restic' },
                { id: 'rsync', text: 'rsync', disabled: existing !== undefined && driver !== 'rsync' },
              ]}
            />
          </FormField>
          <FormField
            label="Attributes"
            description="One KEY=VALUE per line, e.g. BASE_PATH=/srv/backups, RESTIC_SFTP_SERVER=backup.example or RSYNC_HOST=backup.example"
          >
            <Textarea
              ariaLabel="Datastore attributes"
              rows={5}
              value={lines}
              onChange={({ detail }) => setLines(detail.value)}
            />
          </FormField>
          {SECRET_ATTRIBUTES[driver].map((secret) => (
            <FormField
              key={secret}
              label={secret}
              description={
                existing?.secretAttributes.includes(secret)
                  ? 'Stored; leave blank to keep it'
                  : 'Kept in the secret store, never shown again'
              }
            >
              <Input
                type="password"
                ariaLabel={secret}
                value={secrets[secret] ?? ''}
                onChange={({ detail }) => setSecrets({ ...secrets, [secret]: detail.value })}
              />
            </FormField>
          ))}
          {error && (
            <Alert type="error" header={`${verb} refused`}>
              {error}
            </Alert>
          )}
        </SpaceBetween>
      </Modal>
    </>
  );
}
