/**
 * `sched list | add | delete`: scheduled actions, shared by `lifeboat vm sched`,
 * `lifeboat backupjob sched` (`--action backup|drill`) and `lifeboat datastore sched` (`--action
 * verify [--sample N]`: every READY image of the datastore read back, or N of them a run, the
 * least recently verified first; `--action drill --sample N`: N images restored and started,
 * chosen alike). Times are `now`, `+SECONDS` or ISO-8601; repeats are hourly,
 * daily, weekly, monthly (`--days` chooses the days) or an AWS cron expression (`--repeat cron
 * 'EXPR'` or `--repeat 'cron(EXPR)'`), all in UTC; `--end` is a number of runs or a date.
 */
import type { Command } from 'commander';
import { MAX_DRILL_SAMPLE, MAX_VERIFY_SAMPLE, type ScheduledAction } from '#core/model.ts';
import { DEFAULT_DRILL_SAMPLE, SCHEDULE_ACTIONS } from '#core/schedule-actions.ts';
import { parseId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { UsageError } from '../errors.ts';
import { type Column, printJson, printLines, printList } from '../output.ts';

/** A schedule as the API lists it. */
export interface ScheduleView extends ScheduledAction {
  description: string;
  nextRuns: string[];
}

const COLUMNS: readonly Column<ScheduleView>[] = [
  { header: 'ID', value: (s) => s.id },
  { header: 'ACTION', value: (s) => s.action },
  { header: 'SCHEDULE', value: (s) => s.description },
  { header: 'NEXT', value: (s) => s.nextRuns.join(' ') || 'done' },
  { header: 'RUNS', value: (s) => s.runs },
  { header: 'LAST', value: (s) => s.lastError ?? s.lastExecutionId },
];

/** `now`, `+SECONDS` or an ISO-8601 time; anything else is bad usage (exit 2). */
export function parseWhen(value: string): string {
  if (value === 'now' || /^\+\d{1,9}$/.test(value) || /^\d{4}-\d{2}-\d{2}T\S+$/.test(value)) return value;
  throw new UsageError(`--schedule/--time: must be now, +SECONDS or an ISO-8601 time (got "${value}")`);
}

/** `--repeat` words to the API's `repeat`: `cron EXPR` and `cron(EXPR)` both give `cron(EXPR)`. */
export function repeatOf(words: readonly string[] | undefined): string | undefined {
  if (!words || words.length === 0) return undefined;
  const [kind, ...rest] = words;
  if (kind === 'cron') {
    if (rest.length === 0)
      throw new UsageError("--repeat cron needs the expression: --repeat cron '0 2 * * ? *'");
    return `cron(${rest.join(' ')})`;
  }
  if (rest.length > 0 && !kind?.startsWith('cron('))
    throw new UsageError(`--repeat ${kind} takes no expression`);
  return words.join(' ');
}

function parseSample(value: string): number {
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > MAX_VERIFY_SAMPLE)
    throw new UsageError(`--sample: a number of images from 1 to ${MAX_VERIFY_SAMPLE} (got "${value}")`);
  return Number(value);
}

function parseDays(value: string): number[] {
  if (!/^\d{1,2}(,\d{1,2})*$/.test(value))
    throw new UsageError(`--days: a list such as 1,3,5 (got "${value}")`);
  return value.split(',').map(Number);
}

/** The schedules of each kind of object: its API path and what its actions are called. */
const TARGETS = {
  '/vms': 'vm',
  '/jobs': 'job',
  '/datastores': 'datastore',
} as const;

/** Adds `sched list|add|delete` under `parent`, for `/vms`, `/jobs` or `/datastores`. */
export function registerSched(
  parent: Command,
  base: keyof typeof TARGETS,
  what: 'VMID' | 'JOBID' | 'DSID',
): void {
  const actions = SCHEDULE_ACTIONS[TARGETS[base]];
  const sched = requireSubcommand(parent.command('sched').description('scheduled actions (times in UTC)'));

  sched
    .command('list')
    .description('list the scheduled actions and their next run times')
    .argument(`<${what}>`, 'id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const items = await context.client().list<ScheduleView>(`${base}/${id}/schedules`);
      printList(context.output, items, COLUMNS, 'no scheduled actions');
    });

  const add = sched
    .command('add')
    .description(
      base === '/datastores'
        ? "schedule a verification (or a restore drill) of the datastore's images"
        : base === '/jobs'
          ? "schedule a backup (or a restore drill) of the job's VMs"
          : 'schedule a backup',
    )
    .argument(`<${what}>`, 'id', parseId)
    .option('--action <ACTION>', `what to do: ${actions.join(', ')}`, actions[0])
    .requiredOption('--time <WHEN>', 'first run: now, +SECONDS or ISO-8601', parseWhen)
    .option('--repeat <KIND...>', "hourly, daily, weekly, monthly, or cron 'EXPR'")
    .option('--days <LIST>', 'weekly: days 0-6 (0 = Sunday); monthly: days 1-31', parseDays)
    .option('--end <N|DATE>', 'stop after N runs or after this date')
    .option('--priority <N>', 'dispatch priority (users up to 49)', (v) => Number(v));
  if (base === '/vms') add.option('-d, --datastore <DSID>', 'backup datastore id', parseId);
  if (actions.includes('drill')) {
    const verify = actions.includes('verify') ? 'verify: read back (default every image); ' : '';
    const drill = `drill: restored (default ${DEFAULT_DRILL_SAMPLE}, at most ${MAX_DRILL_SAMPLE})`;
    add.option(
      '--sample <N>',
      `images per run, least recently verified first: ${verify}${drill}`,
      parseSample,
    );
  }
  add.action(
    async (
      id: number,
      options: {
        action: string;
        time: string;
        repeat?: string[];
        days?: number[];
        end?: string;
        priority?: number;
        datastore?: number;
        reset?: boolean;
        sample?: number;
      },
      command: Command,
    ) => {
      if (!(actions as readonly string[]).includes(options.action))
        throw new UsageError(`--action: only ${actions.join(' or ')} (got "${options.action}")`);
      if (options.sample !== undefined && !['verify', 'drill'].includes(options.action))
        throw new UsageError('--sample: only with --action verify or drill');
      if (options.action === 'drill' && (options.sample ?? 1) > MAX_DRILL_SAMPLE)
        throw new UsageError(
          `--sample: a drill restores 1 to ${MAX_DRILL_SAMPLE} images a run (got "${options.sample}")`,
        );
      if (base === '/vms' && options.datastore === undefined) {
        throw new UsageError("required option '-d, --datastore <DSID>' not specified");
      }
      const context = contextOf(command);
      const end =
        options.end === undefined ? undefined : /^\d+$/.test(options.end) ? Number(options.end) : options.end;
      const created = await context.client().post<ScheduleView>(`${base}/${id}/schedules`, {
        action: options.action,
        ...(options.datastore !== undefined && { datastoreId: options.datastore }),
        time: options.time,
        repeat: repeatOf(options.repeat),
        days: options.days,
        end,
        priority: options.priority,
        ...(options.sample !== undefined && { sample: options.sample }),
      });
      if (context.output.json) return printJson(created);
      printLines([
        `schedule ${created.id}: ${created.description}`,
        `next runs: ${created.nextRuns.join(', ') || '-'}`,
      ]);
    },
  );

  sched
    .command('delete')
    .description('delete a scheduled action')
    .argument(`<${what}>`, 'id', parseId)
    .argument('<SCHEDID>', 'scheduled action id', parseId)
    .action(async (id: number, schedId: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      await context.client().delete(`${base}/${id}/schedules/${schedId}`);
      if (context.output.json) return printJson({ id: schedId, deleted: true });
      printLines([`schedule ${schedId} deleted`]);
    });
}
