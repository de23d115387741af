/**
 * `lifeboat image list | show | delete | restore | download | verify`: backup images, restoring
 * them, removing them (and their data), writing one stored file to a path on a host, and reading
 * their stored backups back against the sha256 recorded at backup time.
 */
import { type Command, Option } from 'commander';
import type { Drill, Execution, Image } from '#core/model.ts';
import { parseId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import {
  type Column,
  formatBytes,
  formatDetails,
  formatTable,
  printJson,
  printLines,
  printList,
} from '../output.ts';
import { describeTarget, followExecution, queuedOrFollowed, reportOutcome } from '../progress.ts';
import { drillDetails } from './drill.ts';
import { describePermissions, ownershipColumns, registerOwnership } from './ownership.ts';

const COLUMNS: readonly Column<Image>[] = [
  { header: 'ID', value: (image) => image.id },
  { header: 'NAME', value: (image) => image.name },
  { header: 'VM', value: (image) => image.vmId },
  { header: 'DATASTORE', value: (image) => image.datastoreId },
  { header: 'STATE', value: (image) => image.state },
  { header: 'MODE', value: (image) => image.mode },
  { header: 'SIZE', value: (image) => formatBytes(image.size) },
  { header: 'INCREMENTS', value: (image) => image.increments?.length },
  { header: 'CREATED', value: (image) => image.createdAt },
  ...ownershipColumns<Image>(),
];

interface RestoreOptions {
  name?: string;
  ip: boolean;
  nic: boolean;
  increment?: number;
  disk?: number;
  host?: number;
  to?: string;
  pool?: string;
  start?: boolean;
  inPlace?: boolean;
  yesOverwrite?: boolean;
  wait?: boolean;
}

/** Adds the `image` command group to `program`. */
export function registerImage(program: Command): void {
  const image = requireSubcommand(program.command('image').description('backup images'));

  image
    .command('list')
    .description('list backup images')
    .addOption(new Option('--type <TYPE>', 'image type').choices(['backup']))
    .option('--vm <VMID>', 'only the backups of this VM', parseId)
    .option('--datastore <DSID>', 'only the backups in this datastore', parseId)
    .action(async (options: { vm?: number; datastore?: number }, command: Command) => {
      const context = contextOf(command);
      const query = new URLSearchParams();
      if (options.vm !== undefined) query.set('vmId', String(options.vm));
      if (options.datastore !== undefined) query.set('datastoreId', String(options.datastore));
      const search = query.size > 0 ? `?${query}` : '';
      printList(context.output, await context.client().list<Image>(`/images${search}`), COLUMNS, 'no images');
    });

  image
    .command('show')
    .description('show one image: disks and increments')
    .argument('<IMAGEID>', 'image id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().get<Image>(`/images/${id}`);
      if (context.output.json) return printJson(item);
      printLines(describeImage(item));
    });

  image
    .command('delete')
    .description('delete a backup image and its data in the datastore')
    .argument('<IMAGEID>', 'image id', parseId)
    .option('--wait', 'follow the removal of the data to its end (exit 0 only if it succeeded)')
    .action(async (id: number, options: { wait?: boolean }, command: Command) => {
      const context = contextOf(command);
      const client = context.client();
      // 202 with the delete execution; an image with no stored data goes at once (204, no body).
      const execution = await client.delete<Execution | undefined>(`/images/${id}`);
      if (!execution) {
        if (context.output.json) return printJson({ id, deleted: true });
        return printLines([`image ${id} deleted`]);
      }
      if (!options.wait) {
        if (context.output.json) return printJson(execution);
        return printLines([`image ${id} DELETING: execution ${execution.id} ${execution.state}`]);
      }
      if (!context.output.json) process.stderr.write(`execution ${execution.id} ${execution.state}\n`);
      reportOutcome(await followExecution(client, execution.id, context.progress), context.output);
    });

  image
    .command('verify')
    .description(
      "read an image's stored backups back and check each file against the sha256 recorded at backup time; --restore: a restore drill",
    )
    .argument('<IMAGEID>', 'image id', parseId)
    .option(
      '--host <HOSTID>',
      'host that reads the data, admins only (default: the datastore’s bridge or the VM’s host)',
      parseId,
    )
    .option(
      '--restore',
      'a restore drill: restore on the host into its scratch space, check every disk, start the VM without NICs, remove it all',
    )
    .option('--latest-only', 'with --restore: start a VM from the latest point of a chain only')
    .option('--wait', 'follow each verification to its end (exit 0 only if every one succeeded)')
    .action(
      async (
        id: number,
        options: { host?: number; wait?: boolean; restore?: boolean; latestOnly?: boolean },
        command: Command,
      ) => {
        const context = contextOf(command);
        const client = context.client();
        if (options.latestOnly && !options.restore) throw new UsageError('--latest-only needs --restore');
        const body = {
          ...(options.host !== undefined && { hostId: options.host }),
          ...(options.restore && { restore: true }),
          ...(options.latestOnly && { latestOnly: true }),
        };
        // One execution per stored backup (a chain: per point); a drill: one, with its report.
        const queued = await client.post<{ imageId: number; drill?: Drill; executions: Execution[] }>(
          `/images/${id}/verify`,
          body,
        );
        if (!options.wait) {
          if (context.output.json) return printJson(queued);
          return printLines([
            ...(queued.drill ? [`drill ${queued.drill.id} ${queued.drill.result}`] : []),
            ...queued.executions.map((e) => `execution ${e.id} ${e.state}${describeTarget(e)}`),
          ]);
        }
        const ended: Execution[] = [];
        for (const execution of queued.executions) {
          if (!context.output.json) process.stderr.write(`execution ${execution.id} ${execution.state}\n`);
          ended.push(await followExecution(client, execution.id, context.progress));
        }
        const image = await client.get<Image>(`/images/${id}`);
        const drill = queued.drill && (await client.get<Drill>(`/drills/${queued.drill.id}`));
        if (context.output.json) printJson({ image, ...(drill && { drill }), executions: ended });
        else {
          printLines(ended.map((e) => `execution ${e.id} ${e.state}${describeTarget(e)}`));
          if (drill) printLines(drillDetails(drill));
          printLines([
            `image ${id} ${image.verifyState ?? 'never verified'}${image.verifiedAt ? ` at ${image.verifiedAt}` : ''}`,
          ]);
        }
        const failed = ended.find((e) => e.state !== 'SUCCEEDED');
        if (failed) {
          const error = failed.error ? `: ${failed.error.name}: ${failed.error.message}` : '';
          throw new CliError(`execution ${failed.id} ${failed.state}${error}`, 1);
        }
      },
    );

  image
    .command('download')
    .description('write one file of a stored backup to a path on the host that runs the task')
    .argument('<URL>', 'restic://DS/BACKUP/FILE or rsync://DS/VMID/HASH/FILE (see image show)')
    .requiredOption(
      '--to <PATH>',
      'where the host writes the file (relative: under its restore root; absolute elsewhere: admins only)',
    )
    .option(
      '--host <HOSTID>',
      'host that writes the file, admins only (default: the datastore’s bridge or the VM’s host)',
      parseId,
    )
    .action(async (url: string, options: { to: string; host?: number }, command: Command) => {
      const context = contextOf(command);
      const client = context.client();
      // A path on the host, passed as given: a relative one means "under the host's restore root".
      const body = {
        url,
        toPath: options.to,
        ...(options.host !== undefined ? { hostId: options.host } : {}),
      };
      const execution = await client.post<Execution>('/downloads', body);
      if (!context.output.json) process.stderr.write(`execution ${execution.id} ${execution.state}\n`);
      reportOutcome(await followExecution(client, execution.id, context.progress), context.output);
    });

  image
    .command('restore')
    .description('restore a backup image: disk images plus a cleaned VM template')
    .argument('<IMAGEID>', 'image id', parseId)
    .option('--name <NAME>', 'name of the restored VM')
    .option('--no-ip', 'remove IP addresses from the restored template (NO_IP)')
    .option('--no-nic', 'remove the NICs from the restored template (NO_NIC)')
    .option('--increment <N>', 'restore up to this increment (INCREMENT_ID)', parseId)
    .option('--disk <N>', 'restore only this disk (DISK_ID)', parseId)
    .option(
      '--host <HOSTID>',
      'host that writes the restored disks and defines the VM (not started); admins only',
      parseId,
    )
    .option('--start', 'start the VM once defined')
    .option('--in-place', 'restore over the VM’s own disks (VM POWEROFF; needs --yes-overwrite)')
    .option(
      '--yes-overwrite',
      'confirm that --in-place overwrites the VM’s disks (a safety copy is kept until it succeeded)',
    )
    .addOption(
      new Option(
        '--to <DIR>',
        'folder on the host for the restored disks (relative: under its restore root)',
      ).conflicts('pool'),
    )
    .addOption(
      new Option(
        '--pool <POOL>',
        'Ceph pool of the host for the restored rbd disks, as new images NAME-disk-N (allowed by an admin per host)',
      ).conflicts(['start', 'inPlace']),
    )
    .option('--wait', 'follow the restore to its end (exit 0 only if it succeeded)')
    .action(async (id: number, options: RestoreOptions, command: Command) => {
      if (options.inPlace && !options.yesOverwrite)
        throw new UsageError('--in-place overwrites the VM’s disks: add --yes-overwrite to confirm');
      if (options.yesOverwrite && !options.inPlace)
        throw new UsageError('--yes-overwrite goes with --in-place');
      const context = contextOf(command);
      const client = context.client();
      const body = {
        ...(options.name !== undefined ? { name: options.name } : {}),
        noIp: !options.ip,
        noNic: !options.nic,
        ...(options.increment !== undefined ? { incrementId: options.increment } : {}),
        ...(options.disk !== undefined ? { diskId: options.disk } : {}),
        ...(options.host !== undefined ? { hostId: options.host } : {}),
        ...(options.to !== undefined ? { targetDir: options.to } : {}),
        ...(options.pool !== undefined ? { pool: options.pool } : {}),
        ...(options.start ? { start: true } : {}),
        ...(options.inPlace ? { inPlace: true, confirmOverwrite: true } : {}),
      };
      const execution = await client.post<Execution>(`/images/${id}/restore`, body);
      const done = await queuedOrFollowed(client, execution, options.wait, context);
      if (!done) return;
      reportOutcome(done, context.output);
      if (!context.output.json) printLines(describeRestore(done));
    });

  registerOwnership(image, '/images', 'Image', 'IMAGEID');
}

/** What a finished restore made: its files, the domain it defined, and notes (stderr). */
function describeRestore(execution: Execution): string[] {
  const result = execution.params?.result as
    | {
        disks?: { path: string }[];
        templatePath?: string | null;
        domain?: string | null;
        started?: boolean;
        notes?: string[];
      }
    | undefined;
  if (!result) return [];
  for (const note of result.notes ?? []) process.stderr.write(`note: ${note}\n`);
  const lines = (result.disks ?? []).map((d) => `disk ${d.path}`);
  if (result.templatePath) lines.push(`template ${result.templatePath}`);
  if (result.domain) lines.push(`domain ${result.domain} ${result.started ? 'started' : 'defined'}`);
  return lines;
}

/** The human view of `image show`. */
export function describeImage(item: Image): string[] {
  const lines = formatDetails([
    ['ID', item.id],
    ['NAME', item.name],
    ['TYPE', item.type],
    ['VM', item.vmId],
    ['DATASTORE', item.datastoreId],
    ['STATE', item.state],
    ['MODE', item.mode],
    ['SOURCE', item.source],
    ['SIZE', formatBytes(item.size)],
    ['EXECUTION', item.executionId],
    ['OWNER', item.owner && `${item.owner}:${item.group}`],
    ['PERMISSIONS', describePermissions(item.permissions)],
    ['CREATED', item.createdAt],
    // When its stored disks were read back and matched their sha256 (at backup time).
    ['VERIFIED', item.verifiedAt ?? (item.state === 'READY' ? 'never' : undefined)],
    ['VERIFY', item.verifyState && `${item.verifyState}${item.verifyError ? `: ${item.verifyError}` : ''}`],
  ]);
  const disks = item.disks ?? [];
  if (disks.length > 0) {
    lines.push('', 'DISKS');
    lines.push(
      ...formatTable(disks, [
        { header: 'ID', value: (disk) => disk.id },
        { header: 'FORMAT', value: (disk) => disk.format },
        { header: 'SIZE', value: (disk) => formatBytes(disk.size) },
        { header: 'VIRTUAL SIZE', value: (disk) => formatBytes(disk.virtualSize) },
        { header: 'FILE', value: (disk) => disk.file },
        { header: 'SHA256', value: (disk) => disk.sha256 },
      ]),
    );
  }
  const increments = item.increments ?? [];
  if (increments.length > 0) {
    lines.push('', 'INCREMENTS');
    lines.push(
      ...formatTable(increments, [
        { header: 'ID', value: (inc) => inc.id },
        { header: 'PARENT', value: (inc) => inc.parent },
        { header: 'TYPE', value: (inc) => inc.type },
        { header: 'SIZE', value: (inc) => formatBytes(inc.size) },
        { header: 'DATE', value: (inc) => inc.date },
        { header: 'SOURCE', value: (inc) => inc.source },
        { header: 'VERIFIED', value: (inc) => inc.verifiedAt },
      ]),
    );
  }
  return lines;
}
