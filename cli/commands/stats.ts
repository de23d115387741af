/**
 * `lifeboat stats [--json]`: the figures people watch (GET /stats): backups succeeded and failed
 * over the last 24 hours and 7 days with their bytes and median seconds, each datastore's
 * capacity, the VMs missing their scheduled backup and the failed verifications; the caller's
 * own (admins: everything). The same figures the Lambdas publish as CloudWatch metrics.
 */
import type { Command } from 'commander';
import type { MissedBackup } from '#core/missed-backups.ts';
import type { BackupFigures, DatastoreFigures, Stats, StatsWindow } from '#core/stats.ts';
import { contextOf } from '../context.ts';
import { type Column, formatBytes, formatTable, printJson, printLines } from '../output.ts';

const BACKUP_COLUMNS: readonly Column<[StatsWindow, BackupFigures]>[] = [
  { header: 'BACKUPS', value: ([window]) => `last ${window}` },
  { header: 'SUCCEEDED', value: ([, f]) => f.succeeded },
  { header: 'FAILED', value: ([, f]) => f.failed },
  { header: 'BYTES', value: ([, f]) => formatBytes(f.bytes) },
  { header: 'MEDIAN', value: ([, f]) => (f.medianSeconds === null ? undefined : `${f.medianSeconds} s`) },
];

const DATASTORE_COLUMNS: readonly Column<DatastoreFigures>[] = [
  { header: 'DATASTORE', value: (d) => d.id },
  { header: 'NAME', value: (d) => d.name },
  { header: 'TOTAL', value: (d) => formatBytes(d.totalBytes) },
  { header: 'FREE', value: (d) => formatBytes(d.freeBytes) },
  { header: 'USED', value: (d) => formatBytes(d.usedBytes) },
  { header: 'MEASURED', value: (d) => d.monitoredAt },
];

const MISSED_COLUMNS: readonly Column<MissedBackup>[] = [
  { header: 'MISSED VM', value: (m) => m.vmId },
  { header: 'SCHEDULE', value: (m) => m.scheduleId },
  { header: 'PERIOD', value: (m) => `${m.periodSeconds} s` },
  { header: 'LAST SUCCESS', value: (m) => m.lastSuccessAt ?? 'never' },
  { header: 'MISSED SINCE', value: (m) => m.missedSince },
];

/** The human form: three tables and the verify failures, blank lines between. */
export function formatStats(stats: Stats): string[] {
  const lines = formatTable(Object.entries(stats.backups) as [StatsWindow, BackupFigures][], BACKUP_COLUMNS);
  lines.push('');
  lines.push(
    ...(stats.datastores.length > 0 ? formatTable(stats.datastores, DATASTORE_COLUMNS) : ['no datastores']),
  );
  lines.push('');
  lines.push(
    ...(stats.missedBackups.length > 0
      ? formatTable(stats.missedBackups, MISSED_COLUMNS)
      : ['no missed scheduled backups']),
  );
  lines.push('', `verify failures: ${stats.verifyFailures}`);
  return lines;
}

/** Adds the `stats` command to `program`. */
export function registerStats(program: Command): void {
  program
    .command('stats')
    .description(
      'backups succeeded and failed (24 h, 7 days), bytes, median seconds, datastore capacity, missed scheduled backups, verify failures',
    )
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const stats = await context.client().get<Stats>('/stats');
      if (context.output.json) printJson(stats);
      else printLines(formatStats(stats));
    });
}
