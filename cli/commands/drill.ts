/**
 * `lifeboat drill list [--image IMAGEID] | show DRILLID`: restore drill reports. A drill starts
 * with `lifeboat image verify IMAGEID --restore` (commands/image.ts).
 */
import type { Command } from 'commander';
import type { Drill } from '#core/model.ts';
import { parseId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { type Column, formatBytes, formatDetails, printJson, printLines, printList } from '../output.ts';

const COLUMNS: readonly Column<Drill>[] = [
  { header: 'ID', value: (d) => d.id },
  { header: 'IMAGE', value: (d) => d.imageId },
  { header: 'VM', value: (d) => d.vmId },
  { header: 'HOST', value: (d) => d.hostId },
  { header: 'RESULT', value: (d) => d.result },
  { header: 'POINTS', value: (d) => d.points },
  { header: 'BYTES', value: (d) => (d.bytes === undefined ? undefined : formatBytes(d.bytes)) },
  { header: 'SECONDS', value: (d) => d.seconds },
  { header: 'STARTED', value: (d) => d.startedAt ?? d.createdAt },
];

/** The lines of `drill show` (also printed by `image verify --restore --wait`). */
export function drillDetails(d: Drill): string[] {
  return formatDetails([
    ['ID', d.id],
    ['IMAGE', d.imageId],
    ['VM', d.vmId],
    ['DATASTORE', d.datastoreId],
    ['HOST', d.hostId],
    ['EXECUTION', d.executionId],
    ['RESULT', d.result],
    ['POINTS', d.points],
    ['BYTES', d.bytes === undefined ? undefined : `${formatBytes(d.bytes)} (${d.bytes})`],
    ['SECONDS', d.seconds],
    ['LATEST ONLY', d.latestOnly ? 'yes' : 'no'],
    ['REQUESTED BY', d.requestedBy],
    ['STARTED', d.startedAt],
    ['ENDED', d.endedAt],
    ['ERROR', d.error],
  ]);
}

/** Adds the `drill` command group to `program`. */
export function registerDrill(program: Command): void {
  const drill = requireSubcommand(
    program.command('drill').description('restore drills: images restored, checked, started and removed'),
  );

  drill
    .command('list')
    .description('list restore drills, newest first')
    .option('--image <IMAGEID>', 'only the drills of this image', parseId)
    .action(async (options: { image?: number }, command: Command) => {
      const context = contextOf(command);
      const path = options.image === undefined ? '/drills' : `/drills?imageId=${options.image}`;
      printList(context.output, await context.client().list<Drill>(path), COLUMNS, 'no drills');
    });

  drill
    .command('show')
    .description('show one restore drill report')
    .argument('<DRILLID>', 'drill id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().get<Drill>(`/drills/${id}`);
      if (context.output.json) return printJson(item);
      printLines(drillDetails(item));
    });
}
