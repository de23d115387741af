/**
 * `lifeboat datastore create | list | show | update | delete | monitor | import | sched`: backup
 * datastores (`sched`: scheduled verification of every READY image they hold). Secret
 * attributes (RESTIC_PASSWORD, ...) go to the API once and never come back: the API returns only
 * their names, and this command masks secret-looking values again, in case.
 */
import { type Command, Option } from 'commander';
import type { Datastore, Execution } from '#core/model.ts';
import { collectPair, parseId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { UsageError } from '../errors.ts';
import {
  type Column,
  formatBytes,
  formatDetails,
  maskAttributes,
  printJson,
  printLines,
  printList,
} from '../output.ts';
import { queuedOrFollowed, reportOutcome } from '../progress.ts';
import { registerOwnership } from './ownership.ts';
import { registerSched } from './sched.ts';

const COLUMNS: readonly Column<PrintedDatastore>[] = [
  { header: 'ID', value: (ds) => ds.id },
  { header: 'NAME', value: (ds) => ds.name },
  { header: 'DRIVER', value: (ds) => ds.driver },
  { header: 'TOTAL', value: (ds) => bytes(ds.totalBytes) },
  { header: 'FREE', value: (ds) => bytes(ds.freeBytes) },
  { header: 'USED', value: (ds) => bytes(ds.usedBytes) },
];

/** A datastore as printed: its capacity figures null when unknown (CLI.md). */
type PrintedDatastore = Omit<Datastore, 'totalBytes' | 'freeBytes' | 'usedBytes'> & {
  totalBytes: number | null;
  freeBytes: number | null;
  usedBytes: number | null;
};

/** A datastore safe to print: secret-looking attribute values masked, unknown capacity null. */
export function safeDatastore(ds: Datastore): PrintedDatastore {
  return {
    ...ds,
    attributes: maskAttributes(ds.attributes),
    totalBytes: ds.totalBytes ?? null,
    freeBytes: ds.freeBytes ?? null,
    usedBytes: ds.usedBytes ?? null,
  };
}

const bytes = (value: number | null | undefined) => formatBytes(value ?? undefined);

/** Adds the `datastore` command group to `program`. */
export function registerDatastore(program: Command): void {
  const datastore = requireSubcommand(program.command('datastore').description('backup datastores'));

  datastore
    .command('create')
    .description('create a backup datastore')
    .requiredOption('--name <NAME>', 'datastore name')
    .addOption(
      new Option('--driver <DRIVER>', 'datastore driver').choices(['restic', 'rsync']).makeOptionMandatory(),
    )
    .option('--attr <KEY=VALUE>', 'driver attribute (repeat it), e.g. RESTIC_PASSWORD=...', collectPair)
    .action(
      async (options: { name: string; driver: string; attr?: Record<string, string> }, command: Command) => {
        const context = contextOf(command);
        const created = await context.client().post<Datastore>('/datastores', {
          name: options.name,
          driver: options.driver,
          attributes: options.attr ?? {},
        });
        show(context.output.json, created);
      },
    );

  datastore
    .command('list')
    .description('list the backup datastores')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const items = await context.client().list<Datastore>('/datastores');
      printList(context.output, items.map(safeDatastore), COLUMNS, 'no datastores');
    });

  datastore
    .command('show')
    .description('show one datastore (secret attributes by name only)')
    .argument('<DSID>', 'datastore id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      show(context.output.json, await context.client().get<Datastore>(`/datastores/${id}`));
    });

  datastore
    .command('update')
    .description('change driver attributes (an empty VALUE removes one)')
    .argument('<DSID>', 'datastore id', parseId)
    .option('--attr <KEY=VALUE>', 'driver attribute (repeat it)', collectPair)
    .action(async (id: number, options: { attr?: Record<string, string> }, command: Command) => {
      if (!options.attr) throw new UsageError('datastore update needs at least one --attr KEY=VALUE');
      const context = contextOf(command);
      show(
        context.output.json,
        await context.client().patch<Datastore>(`/datastores/${id}`, { attributes: options.attr }),
      );
    });

  datastore
    .command('delete')
    .description('delete a datastore')
    .argument('<DSID>', 'datastore id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      await context.client().delete(`/datastores/${id}`);
      if (context.output.json) return printJson({ id, deleted: true });
      printLines([`datastore ${id} deleted`]);
    });

  datastore
    .command('monitor')
    .description('measure TOTAL / FREE / USED now (a monitor execution on a host)')
    .argument('<DSID>', 'datastore id', parseId)
    .option('--wait', 'follow the monitor to its end, then show the datastore (exit 0 only if it succeeded)')
    .action(async (id: number, options: { wait?: boolean }, command: Command) => {
      const context = contextOf(command);
      const client = context.client();
      const execution = await client.post<Execution>(`/datastores/${id}/monitor`, {});
      const ended = await queuedOrFollowed(client, execution, options.wait, context);
      if (!ended) return;
      if (ended.state !== 'SUCCEEDED') return reportOutcome(ended, context.output);
      show(context.output.json, await client.get<Datastore>(`/datastores/${id}`));
    });

  datastore
    .command('import')
    .description(
      "rebuild the images of a datastore from what it holds (after the control plane's database was lost); admin only",
    )
    .argument('<DSID>', 'datastore id', parseId)
    .option('--wait', 'follow the import to its end and print what it did (exit 0 only if it succeeded)')
    .action(async (id: number, options: { wait?: boolean }, command: Command) => {
      const context = contextOf(command);
      const client = context.client();
      const execution = await client.post<Execution>(`/datastores/${id}/import`, {});
      const ended = await queuedOrFollowed(client, execution, options.wait, context);
      if (!ended) return;
      if (ended.state !== 'SUCCEEDED') return reportOutcome(ended, context.output);
      const result = (ended.params?.result ?? {}) as ImportResult;
      if (context.output.json) return printJson(result);
      printLines([
        `${result.imported ?? 0} images imported, ${result.known ?? 0} already known` +
          (result.skippedCount ? `, ${result.skippedCount} backups skipped` : ''),
        ...(result.imageIds?.length ? [`images: ${result.imageIds.join(' ')}`] : []),
        ...(result.skipped ?? []).map((s) => `skipped ${s.backupId}: ${s.reason}`),
      ]);
    });

  registerSched(datastore, '/datastores', 'DSID');
  registerOwnership(datastore, '/datastores', 'Datastore', 'DSID');
}

/** What an import execution records as its result (functions/operations/import.ts). */
interface ImportResult {
  imported?: number;
  known?: number;
  imageIds?: number[];
  skipped?: { backupId: string; reason: string }[];
  skippedCount?: number;
}

function show(json: boolean, ds: Datastore): void {
  const safe = safeDatastore(ds);
  if (json) {
    printJson(safe);
    return;
  }
  const lines = formatDetails([
    ['ID', safe.id],
    ['NAME', safe.name],
    ['TYPE', safe.type],
    ['DRIVER', safe.driver],
    ['OWNER', safe.owner && `${safe.owner}:${safe.group}`],
    ['PERMISSIONS', safe.permissions],
    ['TOTAL', bytes(safe.totalBytes)],
    ['FREE', bytes(safe.freeBytes)],
    ['USED', bytes(safe.usedBytes)],
    ['MONITORED', safe.monitoredAt],
    ['CREATED', safe.createdAt],
  ]);
  const attributes = Object.entries(safe.attributes ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const secrets = (safe.secretAttributes ?? []).filter((name) => !(name in (safe.attributes ?? {})));
  if (attributes.length > 0 || secrets.length > 0) {
    lines.push('', 'ATTRIBUTES');
    for (const [name, value] of attributes) lines.push(`  ${name}=${value}`);
    for (const name of [...secrets].sort()) lines.push(`  ${name}=******** (secret)`);
  }
  printLines(lines);
}
