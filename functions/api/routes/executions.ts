/** Execution routes: list (newest first) and show. */
import { ExecutionListQuery } from '#core/contracts/api.ts';
import { NotFound } from '#core/errors.ts';
import { executions, listExecutions, publicExecution } from '../../repo/executions.ts';
import { items, json, parseQuery, pathId, type RouteHandler } from '../http.ts';

const list: RouteHandler = async (ctx) => {
  const query = parseQuery(ExecutionListQuery, ctx);
  const all = await listExecutions();
  const mine = ctx.user.role === 'admin' ? all : all.filter((e) => e.requestedBy === ctx.user.name);
  return items(
    mine
      .filter(
        (e) =>
          (query.vmId === undefined || e.vmId === query.vmId) && (!query.state || e.state === query.state),
      )
      .map(publicExecution),
  );
};

const show: RouteHandler = async (ctx) => {
  const id = String(pathId(ctx));
  const execution = await executions.get(id);
  if (ctx.user.role !== 'admin' && execution.requestedBy !== ctx.user.name) {
    // Someone else's execution is reported as absent, like an unknown id.
    throw new NotFound(`Execution ${id} does not exist`);
  }
  return json(publicExecution(execution));
};

/** Execution routes by route key. */
export const executionRoutes: Record<string, RouteHandler> = {
  'GET /executions': list,
  'GET /executions/{id}': show,
};
