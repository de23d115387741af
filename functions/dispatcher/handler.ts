/**
 * The dispatcher: starts queued operations in priority order while the active counts stay under
 * MAX_BACKUPS and MAX_BACKUPS_HOST. Maintenance operations (delete, download, monitor, ...)
 * share the one queue but take no slot: MAX_BACKUPS counts backups, restores and verifies (which
 * read a whole backup back; core/model.ts `takesSlot`). Woken by
 * the API and by Release (async Invoke), by scheduled actions, and every minute; safe to run
 * twice at once, since slots are conditional writes and StartExecution is keyed by the
 * execution id (ExecutionAlreadyExists counts as started). Each run but a wake-up first fires
 * the scheduled actions that are due; the every-minute runs also sweep executions that died holding a slot
 * and queue the datastore monitors that are due (MONITOR_INTERVAL_MINUTES).
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { takesWork } from '#core/host-health.ts';
import { type Host, takesSlot, wasCancelled } from '#core/model.ts';
import { dynamo, sfnClient } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { limits, required, tableName } from '../env.ts';
import { lambda } from '../middleware.ts';
import { freeQueuedGuard, queuedGuardName } from '../operations/backup-queue.ts';
import { stopCancelledStart } from '../operations/cancel.ts';
import { queueDueMonitors } from '../operations/capacity.ts';
import { endOperation } from '../operations/end.ts';
import { markSilentHostsOffline } from '../operations/host-health.ts';
import { checkMissedBackups } from '../operations/missed-backups.ts';
import { batchFind } from '../repo/batch.ts';
import { readCounter, releaseSlot, takeSlot } from '../repo/counters.ts';
import { type ExecutionRecord, executions } from '../repo/executions.ts';
import { hosts } from '../repo/hosts.ts';
import { dequeue, pendingInPages, type Request, requests } from '../repo/requests.ts';
import { isTransactionConditionFailed, isTransactionConflict } from '../repo/table.ts';
import { vms } from '../repo/vms.ts';
import { fireDueSchedules } from './schedules.ts';
import { sweep } from './sweep.ts';

/** What one run did, by execution id. */
export interface DispatchReport {
  started: string[];
  failed: string[];
  waiting: string[];
  /** Stopped taking requests before its Lambda timeout, some perhaps left for the next run. */
  outOfTime?: boolean;
}

/**
 * Time a run keeps in hand when it takes the next chunk of requests: a chunk's reads, slots and
 * StartExecution calls take a few seconds at most. With less left it stops, rather than be cut
 * off by its timeout between a slot taken and its execution started; the requests stay queued
 * for the next run (every operation's end wakes one, and one runs every minute).
 */
export const DISPATCH_RESERVE_MS = 15_000;

/** A handler run: the dispatch, the scheduled actions fired, the executions swept and the monitors queued. */
export interface DispatcherRun extends DispatchReport {
  fired: number[];
  swept: string[];
  /** Hosts this (periodic) run found silent and marked OFFLINE. */
  offline: number[];
  monitors: string[];
  /** VMs this (periodic) run found newly missing their scheduled backup (and notified). */
  missed: number[];
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

/**
 * End a request that can never start (its VM or host is gone) as FAILED, conditional on its
 * execution still being QUEUED, and undo what queueing it marked (a flatten's ACTIVE_FLATTEN and
 * locked image, a delete's DELETING image) before it leaves the queue.
 */
async function failRequest(request: Request, message: string): Promise<void> {
  const ending = {
    state: 'FAILED' as const,
    endedAt: new Date().toISOString(),
    error: { name: 'NotFound', message },
  };
  try {
    const record = await executions.update(
      request.id,
      { ...ending, phase: 'failed' },
      { condition: { expression: '#s = :q', names: { '#s': 'state' }, values: { ':q': 'QUEUED' } } },
    );
    await endOperation(record, ending, { heldSlot: false });
  } catch (err) {
    log('warn', 'execution not marked failed', { executionId: request.id, error: String(err) });
  }
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
async function recordStart(id: string, executionArn: string, hostId: number): Promise<ExecutionRecord> {
  const fields = { executionArn, startedAt: new Date().toISOString(), hostId };
  try {
    return await executions.update(
      id,
      { ...fields, state: 'RUNNING' },
      { condition: { expression: '#s = :q', names: { '#s': 'state' }, values: { ':q': 'QUEUED' } } },
    );
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'ConditionalCheckFailedException') throw err;
    // The state machine is already past Admit (or it was cancelled): keep its state, add what
    // only we know. A fast one may have ended already: its start is then no later than its end.
    const current = await executions.find(id);
    const endedAt = current?.endedAt;
    const startedAt =
      current?.startedAt ?? (endedAt && endedAt < fields.startedAt ? endedAt : fields.startedAt);
    return executions.update(id, { ...fields, startedAt });
  }
}

/**
 * The started request's bookkeeping in one transaction: the execution RUNNING with its ARN,
 * start time and host (while still QUEUED), the request out of the queue, and a backup's
 * "queued" guard freed (while no other execution holds it). When a condition does not hold
 * (Admit already moved the execution on, the guard is gone), the same writes go one by one with
 * their own fallbacks.
 */
async function recordStartAndLeave(
  request: Request,
  executionArn: string,
  hostId: number,
): Promise<ExecutionRecord | undefined> {
  const startedAt = new Date().toISOString();
  const guard =
    request.kind === 'backup' && request.vmId !== undefined
      ? [
          {
            Delete: {
              TableName: tableName('counters'),
              Key: { name: queuedGuardName(request.vmId) },
              ConditionExpression: 'attribute_not_exists(#n) OR #v = :me',
              ExpressionAttributeNames: { '#n': 'name', '#v': 'value' },
              ExpressionAttributeValues: { ':me': request.id },
            },
          },
        ]
      : [];
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: executions.name,
              Key: { id: request.id },
              UpdateExpression: 'SET #a = :a, #t = :t, #h = :h, #s = :running',
              ConditionExpression: '#s = :q',
              ExpressionAttributeNames: {
                '#a': 'executionArn',
                '#t': 'startedAt',
                '#h': 'hostId',
                '#s': 'state',
              },
              ExpressionAttributeValues: {
                ':a': executionArn,
                ':t': startedAt,
                ':h': hostId,
                ':running': 'RUNNING',
                ':q': 'QUEUED',
              },
            },
          },
          {
            Update: {
              TableName: requests.name,
              Key: { id: request.id },
              UpdateExpression: 'SET #d = :d REMOVE #q',
              ConditionExpression: 'attribute_exists(id)',
              ExpressionAttributeNames: { '#d': 'dispatchedAt', '#q': 'queue' },
              ExpressionAttributeValues: { ':d': startedAt },
            },
          },
          ...guard,
        ],
      }),
    );
  } catch (err) {
    if (!isTransactionConditionFailed(err) && !isTransactionConflict(err)) throw err;
    const [record] = await Promise.all([recordStart(request.id, executionArn, hostId), leaveQueue(request)]);
    return record;
  }
  return undefined;
}

/**
 * One pass over the pending requests; `remainingMs` is the invocation's time left (Lambda's
 * `getRemainingTimeInMillis`), checked before each chunk against {@link DISPATCH_RESERVE_MS}.
 */
export async function dispatch(
  remainingMs: () => number = () => Number.POSITIVE_INFINITY,
): Promise<DispatchReport> {
  const { maxBackups, maxBackupsHost } = limits();
  const report: DispatchReport = { started: [], failed: [], waiting: [] };
  // Hosts found full in this pass: a slot freed on one meanwhile goes to the next pass, which
  // reads the queue again in rank order, never to a lower-ranked request later in this one.
  const full = new Set<number>();
  const outOfTime = () => {
    if (remainingMs() >= DISPATCH_RESERVE_MS) return false;
    report.outOfTime = true;
    return true;
  };
  for await (const page of pendingInPages()) {
    if (await dispatchPage(page, report, { maxBackups, maxBackupsHost, full, outOfTime })) break;
  }
  if (report.outOfTime) {
    log('warn', 'dispatcher stopped before its timeout: the requests left wait for the next run', {
      started: report.started.length,
      remainingMs: remainingMs(),
    });
  }
  return report;
}

/** What {@link dispatchPage} needs beyond the page: the limits, hosts found full, the clock. */
interface PagePass {
  maxBackups: number;
  maxBackupsHost: number;
  full: Set<number>;
  /** True (and noted in the report) once too little time is left for another chunk. */
  outOfTime: () => boolean;
}

/** A pending request with what the dispatcher read about it. */
interface Checked {
  request: Request;
  /** Not QUEUED any more (started by an earlier run, or cancelled): just drop it. */
  stale?: boolean;
  /** Why it can never start. */
  gone?: string;
  host?: Host;
}

/**
 * The reads deciding whether each request of a chunk can start: its execution, VM and host, all
 * in one BatchGetItem (a host shared by several requests is read once).
 */
async function checkAll(chunk: readonly Request[]): Promise<Checked[]> {
  const vmIds = chunk.flatMap((r) => (r.kind === 'backup' && r.vmId !== undefined ? [r.vmId] : []));
  const found = await batchFind([
    { table: executions, keys: chunk.map((r) => r.id) },
    { table: vms, keys: vmIds },
    { table: hosts, keys: chunk.map((r) => r.hostId) },
  ]);
  return chunk.map((request) => {
    const execution = found.get(executions.name)?.get(request.id) as ExecutionRecord | undefined;
    if (execution?.state !== 'QUEUED') return { request, stale: true };
    const needsVm = request.kind === 'backup' && request.vmId !== undefined;
    if (needsVm && !found.get(vms.name)?.has(request.vmId as number))
      return { request, gone: `VM ${request.vmId} does not exist` };
    const host = found.get(hosts.name)?.get(request.hostId) as Host | undefined;
    if (!host) return { request, gone: `Host ${request.hostId} does not exist` };
    return { request, host };
  });
}

/**
 * Dispatch one page of requests; true when the cloud-wide limit is reached or time runs short (stop reading).
 * Requests are checked a chunk at a time in parallel (reads), slots are taken one by one in
 * rank order (so a higher priority is never overtaken), and the executions of a chunk are
 * started in parallel: a dispatcher run is bounded by round trips, not by the queue's length.
 */
async function dispatchPage(
  page: Request[],
  report: DispatchReport,
  { maxBackups, maxBackupsHost, full, outOfTime }: PagePass,
): Promise<boolean> {
  if (page.length === 0) return false;
  let free = maxBackups - (await readCounter('active'));
  let rest = page;
  while (rest.length > 0) {
    if (outOfTime()) return true;
    // Check about as many as can start now (most maintenance requests take no slot: always checked).
    const size = Math.min(16, Math.max(1, free));
    const chunk = rest.slice(0, size);
    rest = rest.slice(size);
    const starting: Promise<void>[] = [];
    const outcomes: Promise<{ id: string; started: boolean }>[] = [];
    // StartExecution calls go out one after the other, in rank order, while the next slot is taken.
    let chain: Promise<unknown> = Promise.resolve();
    const settle = async () => {
      await Promise.all(starting);
      for (const outcome of await Promise.all(outcomes)) {
        (outcome.started ? report.started : report.waiting).push(outcome.id);
      }
    };
    for (const checked of await checkAll(chunk)) {
      const { request, host } = checked;
      if (checked.stale) {
        starting.push(leaveQueue(request));
        continue;
      }
      if (checked.gone || !host) {
        starting.push(failRequest(request, checked.gone ?? 'gone'));
        report.failed.push(request.id);
        continue;
      }
      // An OFFLINE or DISABLED host starts nothing: its work waits for it.
      if (!takesWork(host)) {
        report.waiting.push(request.id);
        continue;
      }
      const slotted = takesSlot(request.kind);
      if (slotted && full.has(host.id)) {
        report.waiting.push(request.id);
        continue;
      }
      if (slotted && !(await takeSlot(host.id, maxBackups, host.maxBackupsHost ?? maxBackupsHost))) {
        full.add(host.id);
        report.waiting.push(request.id);
        // Cloud-wide limit reached: nothing else can start either.
        if ((await readCounter('active')) >= maxBackups) {
          await settle();
          return true;
        }
        continue;
      }
      if (slotted) free--;
      const call = chain.then(() => start(request));
      chain = call.catch(() => undefined);
      outcomes.push(startOne(call, request, host, slotted));
    }
    await settle();
    if (free <= 0) free = maxBackups - (await readCounter('active'));
  }
  return false;
}

/**
 * Finish starting one request that holds its slot (`call` is its StartExecution); on failure
 * give the slot back and leave it queued.
 */
async function startOne(
  call: Promise<{ arn: string; already: boolean }>,
  request: Request,
  host: Host,
  slotted: boolean,
): Promise<{ id: string; started: boolean }> {
  let started: { arn: string; already: boolean };
  try {
    started = await call;
  } catch (err) {
    if (slotted) await releaseSlot(host.id);
    log('error', 'StartExecution failed', {
      executionId: request.id,
      error: err instanceof Error ? err.name : '',
    });
    return { id: request.id, started: false };
  }
  // An execution started by an earlier run already holds its own slot.
  if (started.already && slotted) await releaseSlot(host.id);
  const late = await recordStartAndLeave(request, started.arn, host.id);
  // Cancelled between our read and its start (POST /executions/{id}/cancel ended it QUEUED):
  // it must not run, and the slot taken for it goes back. The cancel's mark is enough: its
  // ending (the `released` flag) may still be under way, and gives back no slot of ours. An
  // execution that ended by itself before its start was recorded (a fast one, on a busy
  // dispatcher) was started by us and ran: its Release gave our slot back, and its outcome
  // stands (taking it for a cancel once turned such SUCCEEDED backups ABORTED and leaked slots).
  if (late && wasCancelled(late) && !started.already) {
    await stopCancelledStart(late, started.arn, slotted ? host.id : undefined);
    return { id: request.id, started: false };
  }
  log('info', 'execution started', { executionId: request.id, kind: request.kind, hostId: host.id });
  return { id: request.id, started: true };
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

/** Whether the event is a wake-up sent by `wakeDispatcher` (functions/wake.ts: `{ reason }` only). */
function isWake(event: unknown): boolean {
  if (!event || typeof event !== 'object') return false;
  const e = event as { reason?: unknown; source?: unknown; scheduleId?: unknown };
  return typeof e.reason === 'string' && e.source === undefined && e.scheduleId === undefined;
}

/** A chore's result, or none when it failed (logged): one chore failing never stops the dispatch. */
async function chore<T>(failure: string, task: () => Promise<T[]>): Promise<T[]> {
  return task().catch((err) => {
    log('error', failure, { error: String(err) });
    return [];
  });
}

/**
 * One run: fire due schedules (unless a wake-up); when periodic, sweep, mark silent hosts
 * OFFLINE, queue the datastore monitors due (MONITOR_INTERVAL_MINUTES) and check for missed
 * backups (MISSED_CHECK_MINUTES); then dispatch.
 */
async function run(event: unknown, context?: Context): Promise<DispatcherRun> {
  // A wake-up (an operation queued or ended) only dispatches: due schedules are fired by their
  // own schedule's event and by the periodic run, so a storm of wake-ups costs no query each.
  const fired = isWake(event) ? [] : await chore('scheduled actions not fired', fireDueSchedules);
  const periodic = isPeriodic(event);
  const swept = periodic ? await chore('sweep failed', sweep) : [];
  const offline = periodic ? await chore('host health not checked', () => markSilentHostsOffline()) : [];
  const monitors = periodic ? await chore('datastore monitors not queued', queueDueMonitors) : [];
  const missed = periodic ? await chore('missed backups not checked', () => checkMissedBackups()) : [];
  const remainingMs = () => context?.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
  return { ...(await dispatch(remainingMs)), fired, swept, offline, monitors, missed };
}

/**
 * The Lambda entry point (functions/manifest.ts: `Dispatcher`), with the shared middleware; its
 * success is not logged (it runs on every wake-up and every minute).
 */
export const handler = lambda('Dispatcher', z.unknown(), run, { quiet: true });
