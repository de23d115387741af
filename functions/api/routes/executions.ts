/**
 * Execution routes: list (newest first), show, and cancel (functions/operations/cancel.ts). While an execution runs on its host, the
 * phase and bytes shown are the host's progress record (`<hostId>/<id>`, written by that host's
 * runner only): a record under another host's key is never read for it.
 */
import { ExecutionListQuery } from '#core/contracts/api.ts';
import { NotFound } from '#core/errors.ts';
import type { Execution } from '#core/model.ts';
import { type ProgressFields, progressKey } from '#platform/progress.ts';
import { cancelExecution } from '../../operations/cancel.ts';
import { batchFind } from '../../repo/batch.ts';
import { type ExecutionRecord, executions, listExecutions, publicExecution } from '../../repo/executions.ts';
import { progressFields, progressRecords, readProgress } from '../../repo/progress.ts';
import { vms } from '../../repo/vms.ts';
import { authorize } from '../access.ts';
import { items, json, parseQuery, pathId, type RouteHandler } from '../http.ts';

/** The progress key of an execution whose task is on its host, else undefined. */
function onHostKey(execution: ExecutionRecord): string | undefined {
  // Admit sets `phase: running` with the host; Commit and MarkFailed move the phase on, and
  // from then on the record's own values are the final ones.
  if (execution.state !== 'RUNNING' || execution.phase !== 'running' || execution.hostId === undefined) {
    return undefined;
  }
  return progressKey(execution.hostId, execution.id);
}

/** The executions as users see them, with the progress of those running on their host. */
async function withProgress(records: readonly ExecutionRecord[]): Promise<Execution[]> {
  const keys = records.map(onHostKey);
  const progress = await readProgress(keys.filter((k): k is string => k !== undefined));
  return records.map((record, i) => {
    const key = keys[i];
    const fields = key === undefined ? undefined : progress.get(key);
    return publicExecution(fields ? { ...record, ...fields } : record);
  });
}

const list: RouteHandler = async (ctx) => {
  const query = parseQuery(ExecutionListQuery, ctx);
  const all = await listExecutions();
  const mine = ctx.user.role === 'admin' ? all : all.filter((e) => e.requestedBy === ctx.user.name);
  return items(
    await withProgress(
      mine.filter(
        (e) =>
          (query.vmId === undefined || e.vmId === query.vmId) && (!query.state || e.state === query.state),
      ),
    ),
  );
};

/**
 * The host of each execution this environment last showed running on one (set when admitted,
 * never changed after): its next poll reads the execution and that host's progress record in
 * one BatchGetItem, not a GetItem then a BatchGetItem. A guess only: the record read decides.
 */
const runningOn = new Map<string, number>();
const RUNNING_ON_MAX = 1000;

const show: RouteHandler = async (ctx) => {
  const id = String(pathId(ctx));
  const guess = runningOn.get(id);
  let execution: ExecutionRecord;
  let guessed: { key: string; fields?: ProgressFields } | undefined;
  if (guess === undefined) {
    execution = await executions.get(id);
  } else {
    const key = progressKey(guess, id);
    const found = await batchFind([
      { table: executions, keys: [id] },
      { table: progressRecords, keys: [key] },
    ]);
    const item = found.get(executions.name)?.get(id) as ExecutionRecord | undefined;
    if (!item) throw new NotFound(`Execution ${id} does not exist`);
    execution = item;
    const record = found.get(progressRecords.name)?.get(key);
    guessed = { key, fields: record === undefined ? undefined : progressFields(record) };
  }
  if (ctx.user.role !== 'admin' && execution.requestedBy !== ctx.user.name) {
    // Someone else's execution is reported as absent, like an unknown id.
    throw new NotFound(`Execution ${id} does not exist`);
  }
  const key = onHostKey(execution);
  runningOn.delete(id);
  if (key === undefined || execution.hostId === undefined) return json(publicExecution(execution));
  if (runningOn.size >= RUNNING_ON_MAX) runningOn.delete(runningOn.keys().next().value as string);
  runningOn.set(id, execution.hostId);
  if (guessed?.key !== key) return json((await withProgress([execution]))[0]);
  return json(publicExecution(guessed.fields ? { ...execution, ...guessed.fields } : execution));
};

/**
 * Cancel: its requester (what they started, they may stop), admins, and whoever may act on the
 * execution's VM (the rights table's row); of an execution without a VM, or whose VM is gone,
 * anyone else is answered as for an unknown id. 409 once it has ended.
 */
const cancel: RouteHandler = async (ctx) => {
  const id = String(pathId(ctx));
  const execution = await executions.get(id);
  if (ctx.user.role !== 'admin' && execution.requestedBy !== ctx.user.name) {
    const vm = execution.vmId === undefined ? undefined : await vms.find(execution.vmId);
    if (!vm) throw new NotFound(`Execution ${id} does not exist`);
    authorize(ctx, 'vm', vm);
  }
  const [shown] = await withProgress([await cancelExecution(execution, ctx.user)]);
  return json(shown);
};

/** Execution routes by route key. */
export const executionRoutes: Record<string, RouteHandler> = {
  'GET /executions': list,
  'GET /executions/{id}': show,
  'POST /executions/{id}/cancel': cancel,
};
