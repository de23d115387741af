/**
 * The VM's BACKUP_CONFIG as an editable form: each key with its meaning and its default, checked
 * as the API checks it (../../backup-config-rules.ts) and saved with `PUT /vms/{id}/backup-config`;
 * the API's own message shows next to Save when it refuses.
 */
import Button from '@cloudscape-design/components/button';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import Container from '@cloudscape-design/components/container';
import Form from '@cloudscape-design/components/form';
import FormField from '@cloudscape-design/components/form-field';
import Header from '@cloudscape-design/components/header';
import Input from '@cloudscape-design/components/input';
import Select from '@cloudscape-design/components/select';
import SpaceBetween from '@cloudscape-design/components/space-between';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import { useState } from 'react';
import { call, type Vm } from '../../api.ts';
import { changedPairs, checkValue, FORM_KEYS, type FormKey } from '../../backup-config-rules.ts';
import { useSession } from '../../session.tsx';

type Values = Partial<Record<FormKey, string>>;

const valuesOf = (config: Record<string, string>): Values =>
  Object.fromEntries(FORM_KEYS.map(({ key }) => [key, config[key] ?? '']));

/** The form of `vm`'s BACKUP_CONFIG; `onSaved` after the API accepted a change. */
export function BackupConfigForm({ vm, onSaved }: { vm: Vm; onSaved(): void }) {
  const { token } = useSession();
  const current = vm.backups.BACKUP_CONFIG;
  const [values, setValues] = useState<Values>(() => valuesOf(current));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [saved, setSaved] = useState(false);
  const problems = Object.fromEntries(FORM_KEYS.map(({ key }) => [key, checkValue(key, values[key] ?? '')]));
  const pairs = changedPairs(current, values);
  const invalid = Object.values(problems).some(Boolean);

  function set(key: FormKey, value: string) {
    setValues((v) => ({ ...v, [key]: value }));
    setSaved(false);
  }

  async function save() {
    setBusy(true);
    setError(undefined);
    try {
      await call(token, 'PUT /vms/{id}/backup-config', { params: { id: vm.id }, body: { pairs } });
      setSaved(true);
      onSaved();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (!invalid && Object.keys(pairs).length) void save();
      }}
    >
      <Form
        errorText={error}
        errorIconAriaLabel="Error"
        actions={
          <SpaceBetween direction="horizontal" size="xs" alignItems="center">
            {saved && <StatusIndicator type="success">Saved</StatusIndicator>}
            <Button formAction="none" onClick={() => setValues(valuesOf(current))}>
              Reset
            </Button>
            <Button
              variant="primary"
              loading={busy}
              disabled={invalid || Object.keys(pairs).length === 0}
              ariaLabel="Save backup config"
            >
              Save
            </Button>
          </SpaceBetween>
        }
      >
        <Container header={<Header variant="h2">Backup config</Header>}>
          <ColumnLayout columns={2} minColumnWidth={260}>
            {FORM_KEYS.map((rule) => {
              const value = values[rule.key] ?? '';
              const description = `${rule.meaning}${rule.default ? ` Default: ${rule.default}.` : ''}`;
              return (
                <FormField
                  key={rule.key}
                  label={`${rule.label} (${rule.key})`}
                  description={description}
                  errorText={problems[rule.key]}
                >
                  {rule.values ? (
                    <Select
                      ariaLabel={rule.key}
                      selectedOption={{ value, label: value || `Default (${rule.default})` }}
                      onChange={({ detail }) => set(rule.key, detail.selectedOption.value ?? '')}
                      options={[
                        { value: '', label: `Default (${rule.default})` },
                        ...rule.values.map((v) => ({ value: v, label: v })),
                      ]}
                    />
                  ) : (
                    <Input
                      ariaLabel={rule.key}
                      value={value}
                      inputMode={rule.key === 'KEEP_LAST' ? 'numeric' : 'text'}
                      placeholder={rule.key === 'KEEP_LAST' ? 'Keep every backup' : 'Every disk'}
                      onChange={({ detail }) => set(rule.key, detail.value)}
                    />
                  )}
                </FormField>
              );
            })}
          </ColumnLayout>
        </Container>
      </Form>
    </form>
  );
}
