/**
 * `lifeboat vm list | show VMID | backup VMID -d DSID | backupconfig VMID [KEY=VALUE ...]`.
 */
import { type Command, Option } from 'commander';
import type { Execution, Vm } from '#core/model.ts';
import { collectPair, parseId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { UsageError } from '../errors.ts';
import {
  type Column,
  formatBytes,
  formatDetails,
  formatTable,
  printJson,
  printLines,
  printList,
} from '../output.ts';
import { queuedOrFollowed, reportOutcome } from '../progress.ts';
import { describePermissions, ownershipColumns, registerOwnership } from './ownership.ts';
import { parseWhen, registerSched, type ScheduleView } from './sched.ts';

const COLUMNS: readonly Column<Vm>[] = [
  { header: 'ID', value: (vm) => vm.id },
  { header: 'NAME', value: (vm) => vm.name },
  { header: 'HOST', value: (vm) => vm.hostId },
  { header: 'STATE', value: (vm) => vm.state },
  { header: 'DISKS', value: (vm) => vm.disks?.length },
  { header: 'BACKUPS', value: (vm) => vm.backups?.BACKUP_IDS?.length },
  { header: 'LOCK', value: (vm) => vm.lock },
  ...ownershipColumns<Vm>(),
];

/** Adds the `vm` command group to `program`. */
export function registerVm(program: Command): void {
  const vm = requireSubcommand(program.command('vm').description('virtual machines and their backups'));

  vm.command('list')
    .description('list the VMs')
    .option('--host <HOSTID>', 'only the VMs of this host', parseId)
    .action(async (options: { host?: number }, command: Command) => {
      const context = contextOf(command);
      const search = options.host !== undefined ? `?hostId=${options.host}` : '';
      printList(context.output, await context.client().list<Vm>(`/vms${search}`), COLUMNS, 'no VMs');
    });

  vm.command('show')
    .description('show one VM: disks, NICs, BACKUP_CONFIG, BACKUP_IDS')
    .argument('<VMID>', 'VM id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().get<Vm>(`/vms/${id}`);
      if (context.output.json) return printJson(item);
      printLines(describeVm(item));
    });

  vm.command('backup')
    .description('back up a VM to a backup datastore')
    .argument('<VMID>', 'VM id', parseId)
    .requiredOption('-d, --datastore <DSID>', 'backup datastore id', parseId)
    .option('--reset', 'start a new increment chain (a FULL backup)')
    .addOption(
      new Option('--schedule <WHEN>', 'when to run it: now, +SECONDS or ISO-8601')
        .default('now')
        .argParser(parseWhen),
    )
    .option('--wait', 'follow the backup to its end (exit 0 only if it succeeded)')
    .action(
      async (
        id: number,
        options: { datastore: number; reset?: boolean; schedule: string; wait?: boolean },
        command: Command,
      ) => {
        const context = contextOf(command);
        const client = context.client();
        if (options.schedule !== 'now') {
          if (options.wait) throw new UsageError('--wait cannot follow a scheduled backup');
          const created = await client.post<ScheduleView>(`/vms/${id}/schedules`, {
            datastoreId: options.datastore,
            reset: options.reset === true,
            time: options.schedule,
          });
          if (context.output.json) return printJson(created);
          return printLines([`schedule ${created.id}: backup at ${created.nextRuns[0] ?? '-'}`]);
        }
        const execution = await client.post<Execution>(`/vms/${id}/backup`, {
          datastoreId: options.datastore,
          reset: options.reset === true,
        });
        const ended = await queuedOrFollowed(client, execution, options.wait, context);
        if (ended) reportOutcome(ended, context.output);
      },
    );

  vm.command('backupconfig')
    .description('show BACKUP_CONFIG, or replace it with the KEY=VALUE pairs given')
    .argument('<VMID>', 'VM id', parseId)
    .argument(
      '[pairs...]',
      'KEEP_LAST KEEP_HOURLY KEEP_DAILY KEEP_WEEKLY KEEP_MONTHLY KEEP_YEARLY BACKUP_VOLATILE FS_FREEZE MODE INCREMENT_MODE DISK_IDS',
      collectPair,
    )
    .action(
      async (id: number, given: Record<string, string> | string[], _options: unknown, command: Command) => {
        // Commander answers [] for an absent variadic argument: no pairs means "show it".
        const pairs = Array.isArray(given) || Object.keys(given).length === 0 ? undefined : given;
        const context = contextOf(command);
        const client = context.client();
        const view =
          pairs === undefined
            ? await client.get<BackupConfigView>(`/vms/${id}/backup-config`)
            : await client.put<BackupConfigView>(`/vms/${id}/backup-config`, { pairs, append: false });
        if (context.output.json) return printJson(view);
        printLines(formatConfig(view.config ?? {}, view.effective ?? {}));
      },
    );

  registerSched(vm, '/vms', 'VMID');
  registerOwnership(vm, '/vms', 'VM', 'VMID');
}

/** What `GET` and `PUT /vms/{id}/backup-config` answer. */
export interface BackupConfigView {
  vmId: number;
  /** BACKUP_CONFIG as stored. */
  config: Record<string, string>;
  /** The same with every default filled in. */
  effective?: Record<string, string>;
}

/** `KEY=VALUE` lines: the stored pairs, then the defaults they leave in effect, marked so. */
function formatConfig(config: Record<string, string>, effective: Record<string, string> = {}): string[] {
  const sorted = (record: Record<string, string>) =>
    Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
  const lines = sorted(config).map(([key, value]) => `${key}=${value}`);
  for (const [key, value] of sorted(effective)) if (!(key in config)) lines.push(`${key}=${value} (default)`);
  return lines.length === 0 ? ['BACKUP_CONFIG is empty'] : lines;
}

/** The human view of `vm show`. */
function describeVm(item: Vm): string[] {
  const lines = formatDetails([
    ['ID', item.id],
    ['NAME', item.name],
    ['HOST', item.hostId],
    ['DOMAIN', item.domain],
    ['UUID', item.uuid],
    ['STATE', item.state],
    ['OWNER', item.owner && `${item.owner}:${item.group}`],
    ['PERMISSIONS', describePermissions(item.permissions)],
    ['LOCK', item.lock],
    ['CREATED', item.createdAt],
  ]);
  const disks = item.disks ?? [];
  if (disks.length > 0) {
    lines.push('', 'DISKS');
    lines.push(
      ...formatTable(disks, [
        { header: 'ID', value: (disk) => disk.id },
        { header: 'TARGET', value: (disk) => disk.target },
        { header: 'FORMAT', value: (disk) => disk.format },
        { header: 'SIZE', value: (disk) => formatBytes(disk.size) },
        { header: 'VOLATILE', value: (disk) => (disk.volatile ? 'yes' : 'no') },
        { header: 'SOURCE', value: (disk) => disk.source },
      ]),
    );
  }
  const nics = item.nics ?? [];
  if (nics.length > 0) {
    lines.push('', 'NICS');
    lines.push(
      ...formatTable(nics, [
        { header: 'ID', value: (nic) => nic.id },
        { header: 'NETWORK', value: (nic) => nic.network },
        { header: 'IP', value: (nic) => nic.ip },
        { header: 'IP6', value: (nic) => nic.ip6 },
        { header: 'MAC', value: (nic) => nic.mac },
      ]),
    );
  }
  lines.push(
    '',
    'BACKUP_CONFIG',
    ...formatConfig(item.backups?.BACKUP_CONFIG ?? {}).map((line) => `  ${line}`),
  );
  lines.push('', `BACKUP_IDS: ${(item.backups?.BACKUP_IDS ?? []).join(',') || '-'}`);
  return lines;
}
