/**
 * The dispatcher: starts queued operations in priority order while the active counts stay under
 * MAX_BACKUPS and MAX_BACKUPS_HOST. Maintenance operations (delete, download, verify, monitor)
 * share the one queue but take no slot: MAX_BACKUPS counts backups and restores only. Woken by
 * the API and by Release (async Invoke), by scheduled actions, and every minute; safe to run
 * twice at once, since slots are conditional writes and StartExecution is keyed by the
 * execution id (ExecutionAlreadyExists counts as started). Each run first fires the scheduled
 * actions that are due; the every-minute runs also sweep executions that died holding a slot.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { takesSlot } from '#core/model.ts';
import { freeQueuedGuard } from '../api/routes/vm-backup.ts';
import { sfnClient } from '../aws.ts';
import { limits, required } from '../env.ts';
import { log } from '../log.ts';
import { readCounter, releaseSlot, takeSlot } from '../repo/counters.ts';
import { executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { dequeue, pendingInPages, type Request } from '../repo/requests.ts';
import { vms } from '../repo/vms.ts';
import { fireDueSchedules } from './schedules.ts';
import { sweep } from './sweep.ts';

/** What one run did, by execution id. */
export interface DispatchReport {
  started: string[];
  failed: string[];
  waiting: string[];
}

/** A handler run: the dispatch, the scheduled actions fired and the executions swept. */
export interface DispatcherRun extends DispatchReport {
  fired: number[];
  swept: string[];
}

/** Take the request out of the queue, freeing its VM's "backup queued" guard. */
async function leaveQueue(request: Request): Promise<void> {
  await dequeue(request.id);
  if (request.kind === 'backup' && request.vmId !== undefined)
    await freeQueuedGuard(request.vmId, request.id);
}

/** The state machine of each kind, by its environment variable. */
function stateMachineArn(kind: Request['kind']): string {
  if (kind === 'backup') return required('BACKUP_STATE_MACHINE_ARN');
  if (kind === 'restore') return required('RESTORE_STATE_MACHINE_ARN');
  return required('MAINTENANCE_STATE_MACHINE_ARN');
}

/** Why a request can never start (its VM or host is gone), or null. */
async function vanished(request: Request): Promise<string | null> {
  if (request.kind === 'backup' && request.vmId !== undefined && !(await vms.find(request.vmId))) {
    return `VM ${request.vmId} does not exist`;
  }
  if (!(await hosts.find(request.hostId))) return `Host ${request.hostId} does not exist`;
  return null;
}

async function failRequest(request: Request, message: string): Promise<void> {
  await executions
    .update(
      request.id,
      {
        state: 'FAILED',
        phase: 'failed',
        endedAt: new Date().toISOString(),
        error: { name: 'NotFound', message },
      },
      { condition: { expression: '#s = :q', names: { '#s': 'state' }, values: { ':q': 'QUEUED' } } },
    )
    .catch((err) =>
      log('warn', 'execution not marked failed', { executionId: request.id, error: String(err) }),
    );
  await leaveQueue(request);
}

/** Start the execution; returns its ARN (also when a previous run already started it). */
async function start(request: Request): Promise<{ arn: string; already: boolean }> {
  const arn = stateMachineArn(request.kind);
  try {
    const out = await sfnClient().send(
      new StartExecutionCommand({
        stateMachineArn: arn,
        name: request.id,
        input: JSON.stringify(request.input),
      }),
    );
    return { arn: out.executionArn as string, already: false };
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'ExecutionAlreadyExists') throw err;
    return { arn: `${arn.replace(':stateMachine:', ':execution:')}:${request.id}`, already: true };
  }
}

/**
 * Record the started execution: RUNNING (unless Admit already moved it on), its ARN (which the
 * sweep needs to find a dead execution), start time and host.
 */
async function recordStart(id: string, executionArn: string, hostId: number): Promise<void> {
  const fields = { executionArn, startedAt: new Date().toISOString(), hostId };
  try {
    await executions.update(
      id,
      { ...fields, state: 'RUNNING' },
      { condition: { expression: '#s = :q', names: { '#s': 'state' }, values: { ':q': 'QUEUED' } } },
    );
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'ConditionalCheckFailedException') throw err;
    // The state machine is already past Admit: keep its state, add what only we know.
    await executions.update(id, fields);
  }
}

/** One pass over the pending requests. */
export async function dispatch(): Promise<DispatchReport> {
  const { maxBackups, maxBackupsHost } = limits();
  const report: DispatchReport = { started: [], failed: [], waiting: [] };
  for await (const page of pendingInPages()) {
    if (await dispatchPage(page, report, maxBackups, maxBackupsHost)) break;
  }
  return report;
}

/** Dispatch one page of requests; true when the cloud-wide limit is reached (stop reading). */
async function dispatchPage(
  page: Request[],
  report: DispatchReport,
  maxBackups: number,
  maxBackupsHost: number,
): Promise<boolean> {
  for (const request of page) {
    const execution = await executions.find(request.id);
    if (execution?.state !== 'QUEUED') {
      // Started by an earlier run that stopped before dequeuing, or cancelled: just drop it.
      if (request.queue) await leaveQueue(request);
      continue;
    }
    const gone = await vanished(request);
    if (gone) {
      await failRequest(request, gone);
      report.failed.push(request.id);
      continue;
    }
    const host = await hosts.get(request.hostId);
    const slotted = takesSlot(request.kind);
    if (slotted && !(await takeSlot(host.id, maxBackups, host.maxBackupsHost ?? maxBackupsHost))) {
      report.waiting.push(request.id);
      // Cloud-wide limit reached: nothing else can start either.
      if ((await readCounter('active')) >= maxBackups) return true;
      continue;
    }
    let started: { arn: string; already: boolean };
    try {
      started = await start(request);
    } catch (err) {
      // Not started: give the slot back and leave the request queued for the next run.
      if (slotted) await releaseSlot(host.id);
      log('error', 'StartExecution failed', {
        executionId: request.id,
        error: err instanceof Error ? err.name : '',
      });
      report.waiting.push(request.id);
      continue;
    }
    // An execution started by an earlier run already holds its own slot.
    if (started.already && slotted) await releaseSlot(host.id);
    await recordStart(request.id, started.arn, host.id);
    await leaveQueue(request);
    report.started.push(request.id);
    log('info', 'execution started', { executionId: request.id, kind: request.kind, hostId: host.id });
  }
  return false;
}

/**
 * Whether the event is a periodic run (EventBridge's every-minute tick, the local scheduler
 * loop), which also sweeps, rather than a wake-up or a scheduled action.
 */
function isPeriodic(event: unknown): boolean {
  if (!event || typeof event !== 'object') return false;
  const e = event as { source?: unknown; scheduleId?: unknown };
  return typeof e.source === 'string' && e.scheduleId === undefined;
}

/** The Lambda entry point (functions/manifest.ts: `Dispatcher`). */
export async function handler(event?: unknown): Promise<DispatcherRun> {
  const fired = await fireDueSchedules().catch((err) => {
    log('error', 'scheduled actions not fired', { error: String(err) });
    return [] as number[];
  });
  const swept = isPeriodic(event)
    ? await sweep().catch((err) => {
        log('error', 'sweep failed', { error: String(err) });
        return [] as string[];
      })
    : [];
  return { ...(await dispatch()), fired, swept };
}
