/**
 * `lifeboat execution list | show EXECID [--follow] | cancel EXECID`: running and past operations.
 */
import { type Command, Option } from 'commander';
import { type Execution, ExecutionState } from '#core/model.ts';
import { parseExecutionId, parseId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { type Column, formatBytes, formatDetails, printJson, printLines, printList } from '../output.ts';
import { describeTarget, followExecution, reportOutcome } from '../progress.ts';

const COLUMNS: readonly Column<Execution>[] = [
  { header: 'ID', value: (execution) => execution.id },
  { header: 'KIND', value: (execution) => execution.kind },
  { header: 'STATE', value: (execution) => execution.state },
  { header: 'PHASE', value: (execution) => execution.phase },
  { header: 'VM', value: (execution) => execution.vmId },
  { header: 'DATASTORE', value: (execution) => execution.datastoreId },
  { header: 'IMAGE', value: (execution) => execution.imageId },
  { header: 'PROGRESS', value: progressOf },
  { header: 'STARTED', value: (execution) => execution.startedAt },
];

/** `1.0 GiB/10.0 GiB` while bytes are known, else undefined. */
function progressOf(execution: Execution): string | undefined {
  if (!execution.bytesTotal) return undefined;
  return `${formatBytes(execution.bytesDone)}/${formatBytes(execution.bytesTotal)}`;
}

/** Adds the `execution` command group to `program`. */
export function registerExecution(program: Command): void {
  const execution = requireSubcommand(
    program.command('execution').description('backup and restore operations, running and past'),
  );

  execution
    .command('list')
    .description('list executions')
    .option('--vm <VMID>', 'only the executions of this VM', parseId)
    .addOption(new Option('--state <STATE>', 'only executions in this state').choices(ExecutionState.options))
    .action(async (options: { vm?: number; state?: string }, command: Command) => {
      const context = contextOf(command);
      const query = new URLSearchParams();
      if (options.vm !== undefined) query.set('vmId', String(options.vm));
      if (options.state !== undefined) query.set('state', options.state);
      const path = query.size > 0 ? `/executions?${query}` : '/executions';
      printList(context.output, await context.client().list<Execution>(path), COLUMNS, 'no executions');
    });

  execution
    .command('show')
    .description('show one execution; --follow waits for its end (exit 0 only if it succeeded)')
    .argument('<EXECID>', 'execution id', parseExecutionId)
    .option('--follow', 'follow it with a progress bar until it ends')
    .action(async (id: string, options: { follow?: boolean }, command: Command) => {
      const context = contextOf(command);
      const client = context.client();
      if (options.follow)
        return reportOutcome(await followExecution(client, id, context.progress), context.output);
      const item = await client.get<Execution>(`/executions/${encodeURIComponent(id)}`);
      if (context.output.json) return printJson(item);
      printLines(
        formatDetails([
          ['ID', item.id],
          ['KIND', item.kind],
          ['STATE', item.state],
          ['PHASE', item.phase],
          ['VM', item.vmId],
          ['HOST', item.hostId],
          ['DATASTORE', item.datastoreId],
          ['IMAGE', item.imageId],
          ['PROGRESS', progressOf(item)],
          ['REQUESTED BY', item.requestedBy],
          ['PRIORITY', item.priority],
          ['CREATED', item.createdAt],
          ['STARTED', item.startedAt],
          ['ENDED', item.endedAt],
          ['ERROR', item.error && `${item.error.name}: ${item.error.message}`],
        ]),
      );
    });

  execution
    .command('cancel')
    .description('cancel a queued or running execution: it ends ABORTED, its VM, slot and quota released')
    .argument('<EXECID>', 'execution id', parseExecutionId)
    // One at a time: a second id would otherwise be ignored, and that execution go on running.
    .allowExcessArguments(false)
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().post<Execution>(`/executions/${encodeURIComponent(id)}/cancel`, {});
      if (context.output.json) return printJson(item);
      printLines([`execution ${item.id} ${item.state}${describeTarget(item)}`]);
    });
}
