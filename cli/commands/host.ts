/**
 * `lifeboat host list | show HOSTID`: the hypervisors and the state of their runners.
 */
import type { Command } from 'commander';
import type { Host } from '#core/model.ts';
import { parseId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { type Column, formatDetails, printJson, printLines, printList } from '../output.ts';

const COLUMNS: readonly Column<Host>[] = [
  { header: 'ID', value: (host) => host.id },
  { header: 'NAME', value: (host) => host.name },
  { header: 'CLUSTER', value: (host) => host.cluster },
  { header: 'STATE', value: (host) => host.state },
  { header: 'RUNNER', value: (host) => host.runnerVersion },
  { header: 'LAST HEARTBEAT', value: (host) => host.lastHeartbeat },
];

/** Adds the `host` command group to `program`. */
export function registerHost(program: Command): void {
  const host = requireSubcommand(program.command('host').description('hypervisor hosts and their runners'));

  host
    .command('list')
    .description('list the hosts')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const items = await context.client().list<Host>('/hosts');
      printList(context.output, items, COLUMNS, 'no hosts');
    });

  host
    .command('show')
    .description('show one host')
    .argument('<HOSTID>', 'host id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().get<Host>(`/hosts/${id}`);
      if (context.output.json) return printJson(item);
      printLines(
        formatDetails([
          ['ID', item.id],
          ['NAME', item.name],
          ['CLUSTER', item.cluster],
          ['STATE', item.state],
          ['RUNNER VERSION', item.runnerVersion],
          ['LAST HEARTBEAT', item.lastHeartbeat],
          ['QUEUE', item.queueUrl],
          ['EMULATOR_CPUS', item.emulatorCpus],
          ['MAX_BACKUPS_HOST', item.maxBackupsHost],
          ['CREATED', item.createdAt],
        ]),
      );
    });
}
