/**
 * The one datastore picker of the console's forms (back up now, a job, a schedule): the
 * datastores the API lists for the user, by name, with the driver as description.
 */
import Select from '@cloudscape-design/components/select';
import type { Datastore } from './api.ts';

export function DatastoreSelect(props: {
  datastores: readonly Datastore[];
  value: number | undefined;
  onChange: (id: number) => void;
  ariaLabel: string;
}) {
  const { datastores, value } = props;
  const selected =
    value === undefined
      ? null
      : { value: String(value), label: datastores.find((d) => d.id === value)?.name ?? String(value) };
  return (
    <Select
      ariaLabel={props.ariaLabel}
      selectedOption={selected}
      onChange={({ detail }) => props.onChange(Number(detail.selectedOption.value))}
      options={datastores.map((d) => ({ value: String(d.id), label: d.name, description: d.driver }))}
      placeholder="Choose a datastore"
      empty="No datastore you may use"
    />
  );
}
