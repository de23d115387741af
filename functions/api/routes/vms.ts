/** VM routes: list, show, delete, BACKUP_CONFIG (show / updateconf), and backup requests. */
import { update as updateConfig, withDefaults } from '#core/backup-config.ts';
import { assertBackupableState, lockedMessage } from '#core/backup-rules.ts';
import { BackupConfigBody, BackupRequestBody, parseBody, VmListQuery } from '#core/contracts/api.ts';
import { Conflict } from '#core/errors.ts';
import { assertPriority } from '#core/jobs.ts';
import type { Vm } from '#core/model.ts';
import { queueVmBackup } from '../../operations/backup-queue.ts';
import { datastores } from '../../repo/datastores.ts';
import { jobOfVm } from '../../repo/jobs.ts';
import { isConditionFailed } from '../../repo/table.ts';
import { vms } from '../../repo/vms.ts';
import { authorize, canUse } from '../access.ts';
import { items, json, parseQuery, pathId, type RouteContext, type RouteHandler } from '../http.ts';

/** The VM of the path, checked for the right the route's row asks (core/rights.ts). */
async function vmFor(ctx: RouteContext): Promise<Vm> {
  const vm = await vms.get(pathId(ctx));
  authorize(ctx, 'vm', vm);
  return vm;
}

const list: RouteHandler = async (ctx) => {
  const query = parseQuery(VmListQuery, ctx);
  const all = await vms.list(
    query.hostId === undefined
      ? undefined
      : { expression: '#h = :h', names: { '#h': 'hostId' }, values: { ':h': query.hostId } },
  );
  return items(all.filter((vm) => canUse(ctx.user, vm)).sort((a, b) => a.id - b.id));
};

const show: RouteHandler = async (ctx) => json(await vmFor(ctx));

const remove: RouteHandler = async (ctx) => {
  const vm = await vmFor(ctx);
  if (vm.lock) throw new Conflict(lockedMessage(vm));
  try {
    // The lock may be taken between the read and the delete: the condition settles it.
    await vms.delete(vm.id, { expression: 'attribute_not_exists(#lock)', names: { '#lock': 'lock' } });
  } catch (err) {
    if (isConditionFailed(err)) throw new Conflict(lockedMessage(await vms.get(vm.id)));
    throw err;
  }
  return { statusCode: 204 };
};

/** The stored BACKUP_CONFIG and the same with every default filled in. */
function configView(vm: Vm) {
  return { vmId: vm.id, config: vm.backups.BACKUP_CONFIG, effective: withDefaults(vm.backups.BACKUP_CONFIG) };
}

const showConfig: RouteHandler = async (ctx) => json(configView(await vmFor(ctx)));

const putConfig: RouteHandler = async (ctx) => {
  const vm = await vmFor(ctx);
  const body = parseBody(BackupConfigBody, ctx.body);
  const canIncrement = vm.disks.length > 0 && vm.disks.every((d) => d.canIncrement);
  const next = updateConfig(vm.backups.BACKUP_CONFIG, body.pairs, { canIncrement, append: body.append });
  const updated = await vms.update(vm.id, { 'backups.BACKUP_CONFIG': next });
  return json(configView(updated));
};

const backup: RouteHandler = async (ctx) => {
  const vm = await vmFor(ctx);
  const body = parseBody(BackupRequestBody, ctx.body);
  assertPriority(ctx.user.role, body.priority);
  const priority = body.priority ?? 0;
  const job = await jobOfVm(vm);
  if (job) {
    throw new Conflict(
      `VM ${vm.id} belongs to backup job ${job.id}: back it up with the job (lifeboat backupjob backup ${job.id})`,
    );
  }
  // Before the datastore is looked up: a VM that cannot be backed up is the answer either way.
  assertBackupableState(vm);
  const datastore = await datastores.get(body.datastoreId);
  authorize(ctx, 'datastore', datastore);
  const execution = await queueVmBackup(ctx.user, vm, {
    datastoreId: datastore.id,
    datastore,
    reset: body.reset,
    priority,
  });
  return json(execution, 202);
};

/** VM routes by route key. */
export const vmRoutes: Record<string, RouteHandler> = {
  'GET /vms': list,
  'GET /vms/{id}': show,
  'DELETE /vms/{id}': remove,
  'GET /vms/{id}/backup-config': showConfig,
  'PUT /vms/{id}/backup-config': putConfig,
  'POST /vms/{id}/backup': backup,
};
