/**
 * Datastore routes. Secret attributes (RESTIC_PASSWORD) go to the secret store under `ds/<id>`
 * and never come back: records and answers only name them in `secretAttributes`.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CreateDatastoreBody, parseBody, UpdateDatastoreBody } from '#core/contracts/api.ts';
import { mergeAttributes, splitSecrets, validateAttributes } from '#core/datastore-attributes.ts';
import { Conflict } from '#core/errors.ts';
import { Datastore } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { queueMonitor } from '../../operations/capacity.ts';
import { deleteAwsSchedule } from '../../operations/eventbridge.ts';
import { enqueueMaintenance, maintenanceHost } from '../../operations/maintenance.ts';
import { capacityHistory } from '../../repo/capacity.ts';
import { allocateId, freeName, reserveName } from '../../repo/counters.ts';
import { datastores } from '../../repo/datastores.ts';
import { listImages } from '../../repo/images.ts';
import { schedules, schedulesOf } from '../../repo/schedules.ts';
import { isTransactionConditionFailed } from '../../repo/table.ts';
import { secretStore } from '../../secrets.ts';
import { authorize, canUse, ownedBy } from '../access.ts';
import { items, json, parseQuery, pathId, type RouteContext, type RouteHandler } from '../http.ts';

/** Secret reference of a datastore. */
export function secretRefOf(id: number): string {
  return `ds/${id}`;
}

/** The datastore of the path, checked for the right the route's row asks (core/rights.ts). */
async function datastoreFor(ctx: RouteContext): Promise<Datastore> {
  const ds = await datastores.get(pathId(ctx));
  authorize(ctx, 'datastore', ds);
  return ds;
}

const list: RouteHandler = async (ctx) =>
  items((await datastores.list()).filter((d) => canUse(ctx.user, d)).sort((a, b) => a.id - b.id));

const show: RouteHandler = async (ctx) => json(await datastoreFor(ctx));

const create: RouteHandler = async (ctx) => {
  const body = parseBody(CreateDatastoreBody, ctx.body);
  const valid = validateAttributes(body.driver, body.attributes);
  const { attributes, secrets } = splitSecrets(body.driver, valid);
  const clash = (await datastores.list()).find((d) => d.name === body.name);
  if (clash) throw new Conflict(`datastore name "${body.name}" is taken by datastore ${clash.id}`);
  const id = await allocateId('datastore');
  const secretNames = Object.keys(secrets);
  const datastore = Datastore.parse({
    ...ownedBy(ctx.user),
    id,
    name: body.name,
    type: 'BACKUP',
    driver: body.driver,
    attributes,
    secretAttributes: secretNames,
    secretRef: secretNames.length ? secretRefOf(id) : undefined,
    createdAt: new Date().toISOString(),
  });
  const store = secretStore();
  if (datastore.secretRef) await store.put(datastore.secretRef, secrets);
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          reserveName('datastore', datastore.name, id),
          {
            Put: {
              TableName: datastores.name,
              Item: datastore,
              ConditionExpression: 'attribute_not_exists(id)',
            },
          },
        ],
      }),
    );
  } catch (err) {
    if (datastore.secretRef) await store.delete(datastore.secretRef);
    if (isTransactionConditionFailed(err)) throw new Conflict(`datastore name "${body.name}" is taken`);
    throw err;
  }
  return json(datastore, 201);
};

const patch: RouteHandler = async (ctx) => {
  const ds = await datastores.get(pathId(ctx));
  const body = parseBody(UpdateDatastoreBody, ctx.body);
  const merged = mergeAttributes(ds.driver, ds, body.attributes);
  const name = body.name ?? ds.name;
  if (name !== ds.name) {
    const clash = (await datastores.list()).find((d) => d.name === name);
    if (clash) throw new Conflict(`datastore name "${name}" is taken by datastore ${clash.id}`);
  }
  // Secrets first: a record never names a secret the store does not hold.
  const ref = ds.secretRef ?? secretRefOf(ds.id);
  const store = secretStore();
  if (Object.keys(merged.secrets).length || merged.removedSecrets.length) {
    const current = ds.secretRef ? await store.get(ref).catch(() => ({})) : {};
    const next: Record<string, string> = { ...current, ...merged.secrets };
    for (const removed of merged.removedSecrets) delete next[removed];
    if (Object.keys(next).length) await store.put(ref, next);
    else await store.delete(ref);
  }
  const secretRef = merged.secretAttributes.length ? ref : undefined;
  const set = { name, attributes: merged.attributes, secretAttributes: merged.secretAttributes, secretRef };
  if (name === ds.name) {
    return json(await datastores.update(ds.id, set, { remove: secretRef ? [] : ['secretRef'] }));
  }
  const updated = Datastore.parse({ ...ds, ...set });
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          freeName('datastore', ds.name),
          reserveName('datastore', name, ds.id),
          { Put: { TableName: datastores.name, Item: updated, ConditionExpression: 'attribute_exists(id)' } },
        ],
      }),
    );
  } catch (err) {
    if (isTransactionConditionFailed(err)) throw new Conflict(`datastore name "${name}" is taken`);
    throw err;
  }
  return json(updated);
};

const remove: RouteHandler = async (ctx) => {
  const ds = await datastores.get(pathId(ctx));
  const held = await listImages({ datastoreId: ds.id });
  if (held.length) {
    const ids = held.map((i) => i.id).join(', ');
    throw new Conflict(`Datastore ${ds.id} still holds ${held.length} image(s) (${ids}): delete them first`);
  }
  await dynamo().send(
    new TransactWriteCommand({
      TransactItems: [
        freeName('datastore', ds.name),
        { Delete: { TableName: datastores.name, Key: { id: ds.id } } },
      ],
    }),
  );
  if (ds.secretRef) await secretStore().delete(ds.secretRef);
  // Its scheduled verifies go with it (they would only fail, run after run).
  for (const schedule of await schedulesOf('datastore', ds.id)) {
    await deleteAwsSchedule(schedule.awsName);
    await schedules.delete(schedule.id);
  }
  return { statusCode: 204 };
};

/**
 * Queues a `monitor` (202 with its execution), or answers the one already waiting in the queue
 * (200): it measures after everything before it anyway.
 */
const monitor: RouteHandler = async (ctx) => {
  const ds = await datastoreFor(ctx);
  const out = await queueMonitor(ds, { requestedBy: ctx.user });
  if (!out) throw new Conflict(`datastore ${ds.id}: no monitor queued`);
  return json(out.execution, out.queued ? 202 : 200);
};

/**
 * Queues an `import` (202 with its execution): a host lists what the datastore holds (`catalog`)
 * and the images the control plane does not know are written (operations/import.ts).
 */
const importCatalog: RouteHandler = async (ctx) => {
  // Admins only (core/rights.ts): no object right to check.
  const ds = await datastores.get(pathId(ctx));
  const host = await maintenanceHost(ds);
  return json(await enqueueMaintenance(ctx.user, { kind: 'import', host, datastore: ds }), 202);
};

/** `GET /datastores/{id}/capacity?since=&limit=` */
export const CapacityQuery = z.object({
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});

/**
 * The datastore's capacity samples from `since` (default: the last 30 days), oldest first; the
 * newest `limit` (default 1000) when there are more.
 */
const capacity: RouteHandler = async (ctx) => {
  const ds = await datastoreFor(ctx);
  const query = parseQuery(CapacityQuery, ctx);
  const since = query.since
    ? new Date(query.since).toISOString()
    : new Date(Date.now() - 30 * 86_400_000).toISOString();
  const samples = await capacityHistory(ds.id, since, query.limit);
  return items(samples.map(({ expiresAt: _e, id: _i, ...sample }) => sample));
};

/** Datastore routes by route key. */
export const datastoreRoutes: Record<string, RouteHandler> = {
  'GET /datastores': list,
  'POST /datastores': create,
  'GET /datastores/{id}': show,
  'PATCH /datastores/{id}': patch,
  'DELETE /datastores/{id}': remove,
  'POST /datastores/{id}/monitor': monitor,
  'POST /datastores/{id}/import': importCatalog,
  'GET /datastores/{id}/capacity': capacity,
};
