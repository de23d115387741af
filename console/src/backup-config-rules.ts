/**
 * The BACKUP_CONFIG keys the VM page's form edits, with what each means and the check the API
 * makes of it (core/backup-config.ts, same messages), so a mistake shows under its field before
 * the request; the API still checks everything and its 400 message is shown by the form.
 * Kept here rather than imported: the console bundles no code from core/ (types only).
 */

/** A key of the form. */
export type FormKey = 'KEEP_LAST' | 'BACKUP_VOLATILE' | 'FS_FREEZE' | 'MODE' | 'INCREMENT_MODE' | 'DISK_IDS';

/** One key: what it means, its default and allowed values (a closed list, or free text). */
export interface KeyRule {
  key: FormKey;
  label: string;
  meaning: string;
  /** The value that applies when the key is not set. */
  default: string;
  /** The allowed values (a select), or undefined (a text field). */
  values?: readonly string[];
}

export const FORM_KEYS: readonly KeyRule[] = [
  {
    key: 'KEEP_LAST',
    label: 'Keep last',
    meaning:
      'How many restore points to keep; older ones are deleted (an increment chain is flattened). Empty: keep every backup.',
    default: '',
  },
  {
    key: 'MODE',
    label: 'Mode',
    meaning:
      'FULL: each backup is a complete copy. INCREMENT: a chain of a full backup, then only the changes.',
    default: 'FULL',
    values: ['FULL', 'INCREMENT'],
  },
  {
    key: 'INCREMENT_MODE',
    label: 'Increment mode',
    meaning:
      'How an increment finds the changes: CBT (changed-block tracking, libvirt checkpoints) or SNAPSHOT (qcow2 snapshots).',
    default: 'CBT',
    values: ['CBT', 'SNAPSHOT'],
  },
  {
    key: 'FS_FREEZE',
    label: 'File-system freeze',
    meaning:
      'How the guest is kept consistent while its disks are read: NONE, AGENT (the QEMU guest agent freezes the file systems) or SUSPEND (the VM is paused).',
    default: 'NONE',
    values: ['NONE', 'AGENT', 'SUSPEND'],
  },
  {
    key: 'BACKUP_VOLATILE',
    label: 'Back up volatile disks',
    meaning: 'YES: volatile (scratch) disks are backed up too. NO: they are skipped.',
    default: 'NO',
    values: ['YES', 'NO'],
  },
  {
    key: 'DISK_IDS',
    label: 'Disk IDs',
    meaning: 'Back up only these disks (comma-separated disk ids, e.g. 0,2). Empty: every disk.',
    default: '',
  },
];

/** The API's message for `value` of `key`, or undefined when it passes ('' = unset passes). */
export function checkValue(key: FormKey, value: string): string | undefined {
  const raw = value.trim();
  if (raw === '') return undefined;
  const rule = FORM_KEYS.find((r) => r.key === key);
  if (rule?.values) {
    return rule.values.includes(raw.toUpperCase())
      ? undefined
      : `${key} must be one of ${rule.values.join(', ')} (got "${raw}")`;
  }
  if (key === 'KEEP_LAST') {
    return /^\d{1,9}$/.test(raw) ? undefined : `${key} must be a non-negative integer (got "${raw}")`;
  }
  // DISK_IDS
  return raw.split(',').every((p) => /^\d{1,9}$/.test(p.trim()))
    ? undefined
    : `DISK_IDS must be a comma-separated list of disk ids (got "${raw}")`;
}

/**
 * The `pairs` of `PUT /vms/{id}/backup-config` that turn `current` into `wanted`: each key that
 * changed, an emptied one as '' (the API's "unset").
 */
export function changedPairs(
  current: Record<string, string>,
  wanted: Partial<Record<FormKey, string>>,
): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const { key } of FORM_KEYS) {
    const before = current[key] ?? '';
    const after = (wanted[key] ?? '').trim();
    if (before !== after) pairs[key] = after;
  }
  return pairs;
}
