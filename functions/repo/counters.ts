/**
 * The counters table (key `name`): id allocation (`id:<kind>`), the active-operation slots
 * (`active`, `active:host:<id>`) behind MAX_BACKUPS / MAX_BACKUPS_HOST, and unique-name guards.
 * Every change is one atomic, conditional write, so concurrent callers can never overshoot.
 */
import { GetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '#platform/aws.ts';
import { exponential, retry } from '#platform/retry.ts';
import { tableName } from '../env.ts';
import {
  type Condition,
  isTransactionConditionFailed,
  isTransactionConflict,
  type TransactItem,
} from './table.ts';

/** Kinds of object that get small integer ids. */
export type IdKind = 'host' | 'vm' | 'datastore' | 'image' | 'execution' | 'job' | 'schedule' | 'drill';

/** Name of the slot counter of a host. */
export function hostSlotName(hostId: number): string {
  return `active:host:${hostId}`;
}

/** The next id of a kind (1, 2, 3...): an atomic ADD, so two callers never get the same one. */
export async function allocateId(kind: IdKind): Promise<number> {
  const out = await dynamo().send(
    new UpdateCommand({
      TableName: tableName('counters'),
      Key: { name: `id:${kind}` },
      UpdateExpression: 'ADD #v :one',
      ExpressionAttributeNames: { '#v': 'value' },
      ExpressionAttributeValues: { ':one': 1 },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return Number(out.Attributes?.value);
}

/** One conditional ADD of `delta` on a counter, for a transaction. */
export function counterAdd(name: string, delta: 1 | -1, bound: number): TransactItem {
  return {
    Update: {
      TableName: tableName('counters'),
      Key: { name },
      UpdateExpression: 'ADD #v :d',
      // Taking: below the limit (a missing counter is 0). Giving back: never below zero.
      ConditionExpression: delta > 0 ? 'attribute_not_exists(#v) OR #v < :bound' : '#v >= :bound',
      ExpressionAttributeNames: { '#v': 'value' },
      ExpressionAttributeValues: { ':d': delta, ':bound': delta > 0 ? bound : 1 },
    },
  };
}

/**
 * Take one slot in the cloud-wide and the host's counter, both or neither.
 * Returns false when either is at its limit.
 */
export async function takeSlot(hostId: number, max: number, maxHost: number): Promise<boolean> {
  // Two transactions on the same counter at once: one is cancelled; try again shortly.
  return retry(
    async () => {
      try {
        await dynamo().send(
          new TransactWriteCommand({
            TransactItems: [counterAdd('active', 1, max), counterAdd(hostSlotName(hostId), 1, maxHost)],
          }),
        );
        return true;
      } catch (err) {
        if (isTransactionConditionFailed(err)) return false;
        throw err;
      }
    },
    { attempts: 6, retryOn: isTransactionConflict, delayMs: exponential(20) },
  );
}

/** The transaction items that give a host's slot back (never below zero). */
export function releaseSlotItems(hostId: number): TransactItem[] {
  return [counterAdd('active', -1, 0), counterAdd(hostSlotName(hostId), -1, 0)];
}

/**
 * Give a slot back. Callers that must do it exactly once (Release) put
 * {@link releaseSlotItems} in a transaction with their own guard instead.
 * Returns false when a counter was already at zero (nothing changed).
 */
export async function releaseSlot(hostId: number): Promise<boolean> {
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: releaseSlotItems(hostId) }));
    return true;
  } catch (err) {
    if (isTransactionConditionFailed(err)) return false;
    throw err;
  }
}

/** A counter item read consistently (undefined when never written). */
async function readItem(name: string): Promise<Record<string, unknown> | undefined> {
  const out = await dynamo().send(
    new GetCommand({ TableName: tableName('counters'), Key: { name }, ConsistentRead: true }),
  );
  return out.Item;
}

/** Current value of a counter (0 when never written). */
export async function readCounter(name: string): Promise<number> {
  return Number((await readItem(name))?.value ?? 0);
}

/** The counters-table key of a unique name. */
const nameKey = (scope: string, name: string) => `name:${scope}:${name}`;

/** Transaction item writing `ownerId` as the owner of a unique name, under `condition`. */
function putName(scope: string, name: string, ownerId: number, condition: Condition): TransactItem {
  return {
    Put: {
      TableName: tableName('counters'),
      Item: { name: nameKey(scope, name), value: ownerId },
      ConditionExpression: condition.expression,
      ExpressionAttributeNames: condition.names,
      ExpressionAttributeValues: condition.values,
    },
  };
}

/** Transaction item reserving a unique name (`<scope>:<name>`); fails if already taken. */
export function reserveName(scope: string, name: string, ownerId: number): TransactItem {
  return putName(scope, name, ownerId, { expression: 'attribute_not_exists(#n)', names: { '#n': 'name' } });
}

/** Transaction item moving a unique name from owner `from` to `to`; fails if it is not `from`'s. */
export function moveName(scope: string, name: string, from: number, to: number): TransactItem {
  return putName(scope, name, to, {
    expression: '#v = :from',
    names: { '#v': 'value' },
    values: { ':from': from },
  });
}

/** The owner id of a unique name, read consistently; undefined when it is free. */
export async function nameOwner(scope: string, name: string): Promise<number | undefined> {
  const item = await readItem(nameKey(scope, name));
  return item ? Number(item.value) : undefined;
}

/** Transaction item freeing a unique name. */
export function freeName(scope: string, name: string): TransactItem {
  return { Delete: { TableName: tableName('counters'), Key: { name: nameKey(scope, name) } } };
}
