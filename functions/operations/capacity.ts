/**
 * Datastore capacity: measuring it (queueing `monitor` executions: every MONITOR_INTERVAL_MINUTES
 * from the dispatcher's periodic run, after each backup, and on request), recording what a
 * monitor measured (the datastore's TOTAL / FREE / USED and a sample kept for its history), and
 * admitting a backup only when its estimate fits in FREE.
 *
 * One counters item per datastore, `monitor:ds:<id>`, holds when the next periodic monitor is due
 * and the execution of the last one queued: a monitor still QUEUED already measures what comes
 * before it, so no second one is queued behind it (a job of a hundred VMs queues one, not a hundred).
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { type BackupEstimate, roomProblem } from '#core/backup-estimate.ts';
import type { MonitorResult } from '#core/contracts/tasks.ts';
import { Conflict } from '#core/errors.ts';
import type { Datastore, Execution, Host } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { intSetting, tableName } from '../env.ts';
import { datastoreFreeMetric } from '../metrics.ts';
import { capacitySample, writeCapacitySample } from '../repo/capacity.ts';
import { allocateId } from '../repo/counters.ts';
import { datastores } from '../repo/datastores.ts';
import { executions } from '../repo/executions.ts';
import { isConditionFailed } from '../repo/table.ts';
import { enqueueMaintenance, maintenanceHost } from './maintenance.ts';

/** Who the monitors Lifeboat queues by itself are requested by. */
export const MONITOR_REQUESTER = { name: 'lifeboat:monitor' };

/** Minutes between two periodic monitors of a datastore unless the deployment says otherwise. */
export const DEFAULT_MONITOR_INTERVAL_MINUTES = 10;

/**
 * MONITOR_INTERVAL_MINUTES (CDK context `monitorIntervalMinutes`), default 10; 0 turns the
 * monitors Lifeboat queues by itself off (periodic and after a backup; a requested one still runs).
 */
export function monitorIntervalMinutes(): number {
  return intSetting('MONITOR_INTERVAL_MINUTES', DEFAULT_MONITOR_INTERVAL_MINUTES, 0);
}

// ---------------------------------------------------------------------------------------------
// Admission

/**
 * Refuses (Conflict, with the numbers: core/backup-estimate.ts's roomProblem) a backup of VM
 * `vmId` whose estimate exceeds its datastore's last measured FREE: called before the backup is
 * queued. The datastore is read unless the caller has it already (`request.datastore`); a
 * missing one, like a backup with no estimate (a config Admit refuses), is left to Admit.
 */
export async function assertRoomForBackup(
  vmId: number,
  estimate: BackupEstimate | null,
  request: { datastoreId: number; datastore?: Datastore },
): Promise<void> {
  if (!estimate) return;
  const datastore = request.datastore ?? (await datastores.find(request.datastoreId));
  const problem = datastore && roomProblem(datastore, vmId, estimate);
  if (problem) throw new Conflict(problem);
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** Name of a datastore's monitor item in the counters table. */
export function monitorGuardName(datastoreId: number): string {
  return `monitor:ds:${datastoreId}`;
}

interface MonitorGuard {
  /** Epoch ms when the next periodic monitor is due. */
  value: number;
  /** The last monitor queued. */
  executionId?: string;
}

async function readGuard(datastoreId: number): Promise<MonitorGuard | undefined> {
  const out = await dynamo().send(
    new GetCommand({
      TableName: tableName('counters'),
      Key: { name: monitorGuardName(datastoreId) },
      ConsistentRead: true,
    }),
  );
  return out.Item as MonitorGuard | undefined;
}

/**
 * Queue a `monitor` of a datastore (the record, or its id: read only when a monitor is to be
 * queued) unless one is already waiting in the queue. `due`: only when the periodic interval has
 * passed (the dispatcher's periodic run); otherwise now (after a backup, on request).
 * `fallbackHost` (read only when needed) runs it when no MONITORED host of the datastore's own
 * choice (BRIDGE_LIST, else any) is found. Answers the execution queued, or the one already
 * waiting (`queued: false`), or undefined when nothing was due. The common case after a backup
 * in a busy cloud, a monitor already waiting, costs two reads.
 */
export async function queueMonitor(
  target: Datastore | number,
  options: {
    due?: boolean;
    requestedBy?: { name: string };
    fallbackHost?: () => Promise<Host | undefined>;
    wake?: boolean;
    now?: number;
  } = {},
): Promise<{ execution: Execution; queued: boolean } | undefined> {
  const now = options.now ?? Date.now();
  const datastoreId = typeof target === 'number' ? target : target.id;
  const guard = await readGuard(datastoreId);
  if (options.due && guard && guard.value > now) return undefined;
  if (guard?.executionId) {
    const waiting = await executions.find(guard.executionId);
    if (waiting?.state === 'QUEUED') return { execution: waiting, queued: false };
  }
  const datastore = typeof target === 'number' ? await datastores.get(target) : target;
  const host = await maintenanceHost(datastore).catch(async (err) => {
    const fallback = err instanceof Conflict ? await options.fallbackHost?.() : undefined;
    if (fallback) return fallback;
    throw err;
  });
  const id = String(await allocateId('execution'));
  try {
    // Claimed before queueing, on the guard as read: of two callers at once, one queues.
    await dynamo().send(
      new PutCommand({
        TableName: tableName('counters'),
        Item: {
          name: monitorGuardName(datastore.id),
          value: now + monitorIntervalMinutes() * 60_000,
          executionId: id,
        },
        ConditionExpression: guard ? '#v = :v' : 'attribute_not_exists(#n)',
        ExpressionAttributeNames: guard ? { '#v': 'value' } : { '#n': 'name' },
        ExpressionAttributeValues: guard ? { ':v': guard.value } : undefined,
      }),
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    const other = await readGuard(datastore.id);
    const execution = other?.executionId ? await executions.find(other.executionId) : undefined;
    if (execution) return { execution, queued: false };
    throw new Conflict(`a monitor of datastore ${datastore.id} is being queued: try again`);
  }
  const execution = await enqueueMaintenance(
    options.requestedBy ?? MONITOR_REQUESTER,
    { kind: 'monitor', host, datastore, id },
    { wake: options.wake },
  );
  return { execution, queued: true };
}

/**
 * The dispatcher's periodic run: queue a monitor of every datastore whose interval has passed.
 * A datastore no host can reach is skipped (logged); answers the execution ids queued.
 */
export async function queueDueMonitors(now = Date.now()): Promise<string[]> {
  const queued: string[] = [];
  if (monitorIntervalMinutes() === 0) return queued;
  for (const datastore of await datastores.list()) {
    try {
      const out = await queueMonitor(datastore, { due: true, wake: false, now });
      if (out?.queued) queued.push(out.execution.id);
    } catch (err) {
      log('warn', 'datastore monitor not queued', {
        datastoreId: datastore.id,
        error: err instanceof Error ? err.name : String(err),
        message: err instanceof Error ? err.message : undefined,
      });
    }
  }
  return queued;
}

/**
 * Records a monitor's measure: the datastore's TOTAL / FREE / USED (a figure the driver could
 * not know is removed, never written as 0) and `monitoredAt`, and one sample for its history.
 */
export async function recordCapacity(
  datastoreId: number,
  result: MonitorResult,
  executionId?: string,
  now = Date.now(),
): Promise<void> {
  const sample = capacitySample(datastoreId, result, now, executionId);
  const keys = ['totalBytes', 'freeBytes', 'usedBytes'] as const;
  const known = Object.fromEntries(keys.flatMap((k) => (result[k] === null ? [] : [[k, result[k]]])));
  await datastores.update(
    datastoreId,
    { ...known, monitoredAt: sample.at },
    { remove: keys.filter((k) => result[k] === null) },
  );
  await writeCapacitySample(sample);
  datastoreFreeMetric(datastoreId, result.freeBytes);
}
