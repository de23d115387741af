/**
 * Host routes: create (with its SQS task queue, redriving to the shared host dead-letter
 * queue), list, show, delete, a runner's enrollment and registration (host-enrollment.ts), and
 * its inventory report (VMs upserted by host + domain).
 */
import { CreateQueueCommand, DeleteQueueCommand } from '@aws-sdk/client-sqs';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { CreateHostBody, parseBody, UpdateHostBody } from '#core/contracts/api.ts';
import { Conflict, ValidationError } from '#core/errors.ts';
import { enabledState } from '#core/host-health.ts';
import { Host } from '#core/model.ts';
import { dynamo, sqsClient } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { parseHostPublicKey } from '#platform/sealed-secrets.ts';
import { hostDeadLetterQueueArn, hostQueuePrefix, limits } from '../../env.ts';
import { allocateId, freeName, reserveName } from '../../repo/counters.ts';
import { hosts } from '../../repo/hosts.ts';
import { isTransactionConditionFailed } from '../../repo/table.ts';
import { hostPrincipalName, users } from '../../repo/users.ts';
import { vmsOfHost } from '../../repo/vms.ts';
import { wakeDispatcher } from '../../wake.ts';
import { items, json, pathId, type RouteHandler } from '../http.ts';
import { reportInventory } from './inventory.ts';
import { assertOwnerExists } from './owner-names.ts';

/** SQS settings of a host queue: long poll 20 s, redelivery after 60 s, DLQ after 5 receives. */
export const QUEUE_SETTINGS = { visibilityTimeout: 60, waitSeconds: 20, maxReceiveCount: 5 } as const;

/**
 * Create the host's queue (idempotent: CreateQueue returns an existing queue with the same
 * attributes). Messages received `maxReceiveCount` times go to the shared dead-letter queue
 * `deadLetterTargetArn`, whose alarm covers every host.
 */
export async function createHostQueue(
  hostId: number,
  deadLetterTargetArn: string,
): Promise<{ queueUrl: string }> {
  const queue = await sqsClient().send(
    new CreateQueueCommand({
      QueueName: `${hostQueuePrefix()}${hostId}`,
      Attributes: {
        VisibilityTimeout: String(QUEUE_SETTINGS.visibilityTimeout),
        ReceiveMessageWaitTimeSeconds: String(QUEUE_SETTINGS.waitSeconds),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn,
          maxReceiveCount: QUEUE_SETTINGS.maxReceiveCount,
        }),
      },
    }),
  );
  return { queueUrl: queue.QueueUrl as string };
}

/**
 * Delete the host's queue, and its own dead-letter queue when the record still names one (hosts
 * registered before the shared dead-letter queue).
 */
async function deleteQueues(host: Pick<Host, 'id' | 'queueUrl' | 'deadLetterQueueUrl'>): Promise<void> {
  for (const url of [host.queueUrl, host.deadLetterQueueUrl]) {
    if (!url) continue;
    try {
      await sqsClient().send(new DeleteQueueCommand({ QueueUrl: url }));
    } catch (err) {
      // Already gone is fine; anything else is logged, the host record still goes.
      if (!(err instanceof Error) || !/NonExistentQueue|QueueDoesNotExist/.test(err.name)) {
        log('warn', 'host queue not deleted', {
          hostId: host.id,
          error: err instanceof Error ? err.name : '',
        });
      }
    }
  }
}

const list: RouteHandler = async () => items((await hosts.list()).sort((a, b) => a.id - b.id));

/** `GET /hosts/{id}` (and a runner's `GET /runner/hosts/{id}`). */
export const show: RouteHandler = async (ctx) => json(await hosts.get(pathId(ctx)));

/** The host called `name`, if any. */
export async function hostNamed(name: string): Promise<Host | undefined> {
  return (await hosts.list()).find((h) => h.name === name);
}

/**
 * Creates a host: a new id, its SQS queue, and the record with its name guard (409 when the name
 * is taken). Admins' `POST /hosts` and a runner's registration both come here.
 */
export async function createHost(spec: CreateHostBody): Promise<Host> {
  if (spec.publicKey !== undefined) parseHostPublicKey(spec.publicKey);
  const clash = await hostNamed(spec.name);
  if (clash) throw new Conflict(`host name "${spec.name}" is taken by host ${clash.id}`);
  // Read before anything is written: a deployment without it fails with nothing half created.
  const deadLetterTargetArn = hostDeadLetterQueueArn();
  const id = await allocateId('host');
  const queues = await createHostQueue(id, deadLetterTargetArn);
  const host = Host.parse({
    id,
    name: spec.name,
    cluster: spec.cluster ?? 'default',
    state: 'INIT',
    emulatorCpus: spec.emulatorCpus,
    maxBackupsHost: spec.maxBackupsHost,
    publicKey: spec.publicKey,
    ...queues,
    createdAt: new Date().toISOString(),
  });
  try {
    // The name guard and the record in one transaction: two registrations of a name race safely.
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          reserveName('host', host.name, id),
          { Put: { TableName: hosts.name, Item: host, ConditionExpression: 'attribute_not_exists(id)' } },
        ],
      }),
    );
  } catch (err) {
    await deleteQueues(host);
    if (isTransactionConditionFailed(err)) throw new Conflict(`host name "${spec.name}" is taken`);
    throw err;
  }
  return host;
}

const create: RouteHandler = async (ctx) => {
  return json(await createHost(parseBody(CreateHostBody, ctx.body)), 201);
};

/**
 * EMULATOR_CPUS, MAX_BACKUPS_HOST, RESTORE_POOLS and the default owner (and group) of the VMs the
 * inventory first sees there, of a registered host (admins).
 */
const update: RouteHandler = async (ctx) => {
  const body = parseBody(UpdateHostBody, ctx.body);
  const host = await hosts.get(pathId(ctx));
  const set: Record<string, unknown> = {};
  const remove: string[] = [];
  if (body.emulatorCpus !== undefined) {
    if (body.emulatorCpus === '') remove.push('emulatorCpus');
    else set.emulatorCpus = body.emulatorCpus;
  }
  if (body.maxBackupsHost !== undefined) {
    if (body.maxBackupsHost === null) remove.push('maxBackupsHost');
    else set.maxBackupsHost = body.maxBackupsHost;
  }
  if (body.restorePools !== undefined) {
    if (body.restorePools.length === 0) remove.push('restorePools');
    else set.restorePools = [...new Set(body.restorePools)];
  }
  if (body.defaultOwner === null) remove.push('defaultOwner', 'defaultGroup');
  else {
    const owner = body.defaultOwner ?? host.defaultOwner;
    const group = body.defaultGroup ?? undefined;
    if (typeof body.defaultGroup === 'string' && owner === undefined) {
      throw new ValidationError(`defaultGroup: host ${host.id} has no default owner: name one too`);
    }
    if (owner !== undefined && (body.defaultOwner !== undefined || group !== undefined)) {
      await assertOwnerExists(owner, group);
    }
    if (body.defaultOwner !== undefined) set.defaultOwner = body.defaultOwner;
    // A new owner without a group: the owner's own group from then on.
    if (group !== undefined) set.defaultGroup = group;
    else if (body.defaultGroup === null || body.defaultOwner !== undefined) remove.push('defaultGroup');
  }
  if (body.disabled === true) set.state = 'DISABLED';
  else if (body.disabled === false && host.state === 'DISABLED') {
    set.state = enabledState(host, Date.now(), limits().hostOfflineSeconds);
  }
  if (body.disabled !== undefined) {
    log('info', body.disabled ? 'host disabled' : 'host enabled', { hostId: host.id, by: ctx.user.name });
  }
  // Nothing to write (enabling a host that is not disabled): the host as it is.
  const updated =
    Object.keys(set).length === 0 && remove.length === 0
      ? host
      : await hosts.update(host.id, set, { remove });
  // Work that waited for the host may start now (a host that was not disabled had none waiting).
  if (body.disabled === false && host.state === 'DISABLED') await wakeDispatcher(`host ${host.id} enabled`);
  return json(updated);
};

const remove: RouteHandler = async (ctx) => {
  const host = await hosts.get(pathId(ctx));
  const onHost = await vmsOfHost(host.id);
  if (onHost.length > 0) {
    const ids = onHost.map((v) => v.id).join(', ');
    throw new Conflict(`Host ${host.id} still has ${onHost.length} VM(s) (${ids}): delete them first`);
  }
  await dynamo().send(
    new TransactWriteCommand({
      TransactItems: [
        freeName('host', host.name),
        { Delete: { TableName: hosts.name, Key: { id: host.id } } },
        // Its runner's credential goes with it.
        { Delete: { TableName: users.name, Key: { name: hostPrincipalName(host.id) } } },
      ],
    }),
  );
  await deleteQueues(host);
  return { statusCode: 204 };
};

/** Host routes by route key. */
export const hostRoutes: Record<string, RouteHandler> = {
  'GET /hosts': list,
  'POST /hosts': create,
  'GET /hosts/{id}': show,
  'PATCH /hosts/{id}': update,
  'DELETE /hosts/{id}': remove,
  'PUT /hosts/{id}/inventory': reportInventory,
};
