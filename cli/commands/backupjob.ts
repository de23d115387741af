/**
 * `lifeboat backupjob create | list | show | update | delete | backup | retry | sched`: backup
 * jobs, VMs backed up together to one datastore with shared BACKUP_CONFIG defaults.
 */
import { type Command, Option } from 'commander';
import type { BackupJob, Execution } from '#core/model.ts';
import { collectPair, parseId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { UsageError } from '../errors.ts';
import { type Column, formatDetails, printJson, printLines, printList } from '../output.ts';
import { followExecution } from '../progress.ts';
import { registerOwnership } from './ownership.ts';
import { registerSched } from './sched.ts';

const list = (ids: readonly number[] | undefined) => (ids?.length ? ids.join(',') : '-');

const COLUMNS: readonly Column<BackupJob>[] = [
  { header: 'ID', value: (j) => j.id },
  { header: 'NAME', value: (j) => j.name },
  { header: 'DS', value: (j) => j.datastoreId },
  { header: 'PRIO', value: (j) => j.priority },
  { header: 'EXECUTION', value: (j) => j.execution },
  { header: 'VMS', value: (j) => list(j.vmIds) },
  { header: 'BACKING_UP', value: (j) => list(j.backingUpVms) },
  { header: 'ERROR', value: (j) => list(j.errorVms) },
];

function parseVmList(value: string): number[] {
  if (!/^\d{1,9}(,\d{1,9})*$/.test(value))
    throw new UsageError(`--vms: a list of VM ids such as 3,7,12 (got "${value}")`);
  return value.split(',').map(Number);
}

function parsePriority(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 99)
    throw new UsageError(`--priority: an integer from 0 to 99 (got "${value}")`);
  return n;
}

function describeJob(job: BackupJob): string[] {
  const lines = formatDetails([
    ['ID', job.id],
    ['NAME', job.name],
    ['DATASTORE', job.datastoreId],
    ['PRIORITY', job.priority],
    ['EXECUTION', job.execution],
    ['VMS', list(job.vmIds)],
    ['OUTDATED', list(job.outdatedVms)],
    ['BACKING_UP', list(job.backingUpVms)],
    ['UPDATED', list(job.updatedVms)],
    ['ERROR', list(job.errorVms)],
    ['LAST RUN', job.lastRunAt],
    ['OWNER', `${job.owner}:${job.group}`],
  ]);
  const config = Object.entries(job.config ?? {}).sort(([a], [b]) => a.localeCompare(b));
  lines.push(
    '',
    'BACKUP_CONFIG',
    ...(config.length ? config.map(([k, v]) => `  ${k}=${v}`) : ['  (VM defaults)']),
  );
  return lines;
}

const executionOption = () =>
  new Option('--execution <MODE>', 'one VM at a time, in order, or all at once').choices([
    'sequential',
    'parallel',
  ]);

/** Adds the `backupjob` command group to `program`. */
export function registerBackupJob(program: Command): void {
  const job = requireSubcommand(
    program.command('backupjob').description('backup jobs: VMs backed up together'),
  );

  job
    .command('create')
    .description('create a backup job')
    .requiredOption('--name <NAME>', 'job name')
    .requiredOption('--vms <ID,ID,...>', 'the VMs, in backup order', parseVmList)
    .requiredOption('-d, --datastore <DSID>', 'backup datastore id', parseId)
    .option('--priority <N>', 'dispatch priority 0-99 (users up to 49), higher first', parsePriority)
    .addOption(executionOption().default('sequential'))
    .argument(
      '[pairs...]',
      'BACKUP_CONFIG defaults: KEEP_LAST KEEP_DAILY.. MODE FS_FREEZE BACKUP_VOLATILE RESET',
      collectPair,
    )
    .action(
      async (
        given: Record<string, string> | string[],
        options: { name: string; vms: number[]; datastore: number; priority?: number; execution: string },
        command: Command,
      ) => {
        const context = contextOf(command);
        const created = await context.client().post<BackupJob>('/jobs', {
          name: options.name,
          vmIds: options.vms,
          datastoreId: options.datastore,
          priority: options.priority,
          execution: options.execution,
          config: Array.isArray(given) ? {} : given,
        });
        if (context.output.json) return printJson(created);
        printLines(describeJob(created));
      },
    );

  job
    .command('list')
    .description('list the backup jobs')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      printList(context.output, await context.client().list<BackupJob>('/jobs'), COLUMNS, 'no backup jobs');
    });

  job
    .command('show')
    .description('show one backup job and its VM lists')
    .argument('<JOBID>', 'job id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().get<BackupJob>(`/jobs/${id}`);
      if (context.output.json) return printJson(item);
      printLines(describeJob(item));
    });

  job
    .command('update')
    .description(
      'change a backup job (KEY=VALUE pairs change its BACKUP_CONFIG defaults; an empty VALUE removes one)',
    )
    .argument('<JOBID>', 'job id', parseId)
    .argument('[pairs...]', 'BACKUP_CONFIG defaults', collectPair)
    .option('--name <NAME>', 'job name')
    .option('--vms <ID,ID,...>', 'the VMs, in backup order', parseVmList)
    .option('-d, --datastore <DSID>', 'backup datastore id', parseId)
    .option('--priority <N>', 'dispatch priority 0-99', parsePriority)
    .addOption(executionOption())
    .action(
      async (
        id: number,
        given: Record<string, string> | string[],
        options: { name?: string; vms?: number[]; datastore?: number; priority?: number; execution?: string },
        command: Command,
      ) => {
        const config = Array.isArray(given) || Object.keys(given).length === 0 ? undefined : given;
        const body = {
          name: options.name,
          vmIds: options.vms,
          datastoreId: options.datastore,
          priority: options.priority,
          execution: options.execution,
          config,
        };
        if (Object.values(body).every((v) => v === undefined)) throw new UsageError('nothing to update');
        const context = contextOf(command);
        const updated = await context.client().patch<BackupJob>(`/jobs/${id}`, body);
        if (context.output.json) return printJson(updated);
        printLines(describeJob(updated));
      },
    );

  job
    .command('delete')
    .description('delete a backup job and its scheduled actions')
    .argument('<JOBID>', 'job id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      await context.client().delete(`/jobs/${id}`);
      if (context.output.json) return printJson({ id, deleted: true });
      printLines([`backup job ${id} deleted`]);
    });

  for (const [verb, description] of [
    ['backup', 'back up every VM of the job now'],
    ['retry', 'back up again the VMs in ERROR'],
  ] as const) {
    job
      .command(verb)
      .description(description)
      .argument('<JOBID>', 'job id', parseId)
      .option('--wait', 'follow the backups queued now to their end (exit 0 only if all succeeded)')
      .action(async (id: number, options: { wait?: boolean }, command: Command) => {
        const context = contextOf(command);
        const client = context.client();
        const run = await client.post<{ job: BackupJob; executions: Execution[] }>(`/jobs/${id}/${verb}`, {});
        if (!options.wait) {
          if (context.output.json) return printJson(run);
          return printLines([
            `backup job ${id}: ${run.executions.map((e) => `execution ${e.id} (VM ${e.vmId})`).join(', ') || 'nothing'} queued`,
          ]);
        }
        // A sequential job queues its next VM as each ends: follow the job until it is done.
        for (;;) {
          const current = await client.get<BackupJob>(`/jobs/${id}`);
          if (current.backingUpVms.length === 0 && current.outdatedVms.length === 0) {
            if (context.output.json) printJson(current);
            else printLines(describeJob(current));
            if (current.errorVms.length > 0) process.exitCode = 1;
            return;
          }
          const executions = await client.list<Execution>('/executions');
          const active = executions.find(
            (e) =>
              e.vmId !== undefined &&
              current.backingUpVms.includes(e.vmId) &&
              ['QUEUED', 'RUNNING'].includes(e.state),
          );
          if (active) {
            const outcome = await followExecution(client, active.id, context.progress);
            if (!context.output.json) process.stderr.write(`execution ${outcome.id} ${outcome.state}\n`);
          } else await new Promise((r) => setTimeout(r, 1000));
        }
      });
  }

  registerSched(job, '/jobs', 'JOBID');
  registerOwnership(job, '/jobs', 'Backup job', 'JOBID');
}
