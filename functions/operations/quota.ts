/**
 * Datastore quotas in DynamoDB (rules in core/quota.ts): one counters item per (user or group,
 * datastore or all) with `sizeUsed`/`sizeLimit`/`sizeRoom` and `imagesUsed`/`imagesLimit`/
 * `imagesRoom`. A backup's life through them:
 *
 * | when                  | where                         | what                                           |
 * |-----------------------|-------------------------------|------------------------------------------------|
 * | queued                | backup-queue.ts (one transaction with the request) | the estimate reserved, conditionally: `room >= charge` on the 4 items |
 * | committed             | commit-backup.ts              | settled: the reservation taken back, the real size charged to the image's owner, recorded on the image |
 * | ended without commit  | end.ts (undoMarks)            | the reservation given back                     |
 * | image record deleted  | commit-maintenance.ts         | the image's recorded charge given back          |
 *
 * The execution's `params.quota` holds the reservation and `params.quotaSettled` marks it settled
 * or released, written in the same transaction as the counters, so each happens once. Owners in
 * the admin group (and `admin`) are charged nothing, as OpenNebula exempts oneadmin's.
 */
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import type { BackupEstimate } from '#core/backup-estimate.ts';
import { Forbidden } from '#core/errors.ts';
import type { Image, Vm } from '#core/model.ts';
import {
  backupCharge,
  type Charge,
  chargedKeys,
  exempt,
  givenBack,
  type QuotaEntry,
  type QuotaLimits,
  type QuotaOwner,
  type QuotaScope,
  quotaKey,
  refusal,
  roomOf,
  settlement,
  UNLIMITED,
  UNLIMITED_ROOM,
} from '#core/quota.ts';
import { dynamo } from '#platform/aws.ts';
import { exponential, retry } from '#platform/retry.ts';
import { batchFind } from '../repo/batch.ts';
import { executions } from '../repo/executions.ts';
import { images } from '../repo/images.ts';
import type { TransactItem } from '../repo/table.ts';
import {
  type Condition,
  cancellationCodes,
  isConditionFailed,
  isTransactionConflict,
  Table,
} from '../repo/table.ts';

/** What a queued backup reserved (its execution's `params.quota`). */
export const Reservation = z.object({
  user: z.string().min(1),
  group: z.string().min(1),
  datastoreId: z.number().int().nonnegative(),
  sizeMiB: z.number().int().nonnegative(),
  images: z.number().int().nonnegative(),
});
export type Reservation = z.infer<typeof Reservation>;

/** A quota entry's counters item: figures never written are nothing used and unlimited. */
const QuotaItem = z.object({
  name: z.string(),
  sizeUsed: z.number().optional(),
  sizeLimit: z.number().optional(),
  imagesUsed: z.number().optional(),
  imagesLimit: z.number().optional(),
});
type QuotaItem = z.infer<typeof QuotaItem>;

/** The quota entries of the counters table (key `name`, core/quota.ts's quotaKey). */
const quotaItems = new Table('counters', QuotaItem, 'Quota entry', 'name');

/** One item's update by `charge` (negative: given back); `checked` adds the room condition. */
function chargeItem(name: string, charge: Charge, checked: boolean): TransactItem {
  const conditions: string[] = [];
  if (checked && charge.sizeMiB > 0) conditions.push('(attribute_not_exists(#sr) OR #sr >= :s)');
  if (checked && charge.images > 0) conditions.push('(attribute_not_exists(#ir) OR #ir >= :i)');
  return {
    Update: {
      TableName: quotaItems.name,
      Key: { name },
      UpdateExpression:
        'SET #sr = if_not_exists(#sr, :big) - :s, #su = if_not_exists(#su, :zero) + :s, ' +
        '#ir = if_not_exists(#ir, :big) - :i, #iu = if_not_exists(#iu, :zero) + :i',
      ...(conditions.length > 0 && { ConditionExpression: conditions.join(' AND ') }),
      ExpressionAttributeNames: {
        '#sr': 'sizeRoom',
        '#su': 'sizeUsed',
        '#ir': 'imagesRoom',
        '#iu': 'imagesUsed',
      },
      ExpressionAttributeValues: {
        ':s': charge.sizeMiB,
        ':i': charge.images,
        ':big': UNLIMITED_ROOM,
        ':zero': 0,
      },
    },
  };
}

/**
 * What queueing a backup of `vm` to `datastoreId`, estimated at `estimate`, reserves
 * (core/quota.ts's backupCharge), charged to the VM's owner and group (its image will be theirs);
 * null when they are exempt.
 */
export function backupReservation(
  vm: Pick<Vm, 'owner' | 'group'>,
  datastoreId: number,
  estimate: BackupEstimate | null,
): Reservation | null {
  if (exempt(vm.owner, vm.group)) return null;
  return { user: vm.owner, group: vm.group, datastoreId, ...backupCharge(estimate) };
}

/** The transaction items that take `reservation`, each only if its entry has the room. */
export function reservationItems(reservation: Reservation): TransactItem[] {
  const keys = chargedKeys(reservation.user, reservation.group, reservation.datastoreId);
  return keys.map((key) => chargeItem(key, reservation, true));
}

/** A queueing transaction whose only failed conditions were the reservation's (its last items). */
function quotaRefused(err: unknown, count: number): boolean {
  const codes = cancellationCodes(err);
  const split = codes.length - count;
  return (
    codes.slice(split).includes('ConditionalCheckFailed') &&
    !codes.slice(0, split).includes('ConditionalCheckFailed')
  );
}

/** Thrown inside the retry when the entries, read again, had room after all (freed meanwhile). */
class RoomFreed extends Error {
  override readonly name = 'RoomFreed';
}

/**
 * Queue with `reservation` taken in the same transaction: `queue` gets the items to add to it.
 * When an entry has no room, 403 naming the owner, the datastore and the numbers; nothing is
 * queued. A transaction that met another on the same entry (backups of one owner at once) is
 * tried again.
 */
export async function queueWithQuota<T>(
  reservation: Reservation | null,
  queue: (items: TransactItem[]) => Promise<T>,
): Promise<T> {
  if (!reservation) return queue([]);
  const items = reservationItems(reservation);
  return retry(
    async () => {
      try {
        return await queue(items);
      } catch (err) {
        if (!quotaRefused(err, items.length)) throw err;
        throw await explainRefusal(reservation);
      }
    },
    {
      attempts: 8,
      retryOn: (err) => err instanceof RoomFreed || isTransactionConflict(err),
      delayMs: exponential(15),
      exhausted: (last) =>
        last instanceof RoomFreed
          ? new Forbidden('quota exceeded: no room left (other backups took it)')
          : last,
    },
  );
}

/** The 403 of a refused reservation, from its entries as they are now (RoomFreed if they fit). */
async function explainRefusal(reservation: Reservation): Promise<Error> {
  const owners: QuotaOwner[] = [
    { kind: 'user', name: reservation.user },
    { kind: 'group', name: reservation.group },
  ];
  const scopes: QuotaScope[] = [reservation.datastoreId, 'all'];
  const keys = owners.flatMap((o) => scopes.map((s) => quotaKey(o, s)));
  const found = await readItems(keys);
  for (const owner of owners) {
    for (const scope of scopes) {
      const message = refusal(owner, entryOf(scope, found.get(quotaKey(owner, scope))), reservation);
      if (message) return new Forbidden(message);
    }
  }
  return new RoomFreed('quota room freed meanwhile');
}

/** The counters items of `keys` that exist, by name (strongly consistent). */
async function readItems(keys: readonly string[]): Promise<Map<string, QuotaItem>> {
  const found = await batchFind([{ table: quotaItems, keys }]);
  return (found.get(quotaItems.name) ?? new Map()) as Map<string, QuotaItem>;
}

/** An entry from its counters item (absent: nothing used, unlimited). */
function entryOf(scope: QuotaScope, item: QuotaItem | undefined): QuotaEntry {
  return {
    datastore: scope,
    size: { used: item?.sizeUsed ?? 0, limit: item?.sizeLimit ?? UNLIMITED },
    images: { used: item?.imagesUsed ?? 0, limit: item?.imagesLimit ?? UNLIMITED },
  };
}

/**
 * Settle a committed backup: its reservation taken back and what it really wrote charged (its
 * size in MiB, and one image when it made the image) to whoever the image counts against (the
 * reservation's owner for a new image), recorded on the image. Once per execution.
 */
export async function settleBackupQuota(
  execution: { id: string; params: Record<string, unknown> },
  image: Image,
  writtenBytes: number,
): Promise<void> {
  const parsed = Reservation.safeParse(execution.params.quota);
  if (!parsed.success || execution.params.quotaSettled !== undefined) return;
  const { charges, recorded } = settlement(parsed.data, image, writtenBytes);
  await settleOnce(execution.id, 'settled', charges, [
    {
      Update: {
        TableName: images.name,
        Key: { id: image.id },
        UpdateExpression: 'SET #q = :q',
        ConditionExpression: 'attribute_exists(id)',
        ExpressionAttributeNames: { '#q': 'quota' },
        ExpressionAttributeValues: { ':q': recorded },
      },
    },
  ]);
}

/**
 * Give back the reservation of a backup that ended without committing (undoMarks); nothing when
 * it reserved nothing or was settled already.
 */
export async function releaseReservation(record: {
  id: string;
  params: Record<string, unknown>;
}): Promise<void> {
  const parsed = Reservation.safeParse(record.params.quota);
  if (!parsed.success || record.params.quotaSettled !== undefined) return;
  await settleOnce(record.id, 'released', givenBack(parsed.data, parsed.data), []);
}

/** The counters changes and `extra` items, with the execution's `quotaSettled` mark, at most once. */
async function settleOnce(
  executionId: string,
  how: 'settled' | 'released',
  charges: readonly [string, Charge][],
  extra: TransactItem[],
): Promise<void> {
  const mark: TransactItem = {
    Update: {
      TableName: executions.name,
      Key: { id: executionId },
      UpdateExpression: 'SET #p.#qs = :how',
      ConditionExpression: 'attribute_exists(#p.#q) AND attribute_not_exists(#p.#qs)',
      ExpressionAttributeNames: { '#p': 'params', '#q': 'quota', '#qs': 'quotaSettled' },
      ExpressionAttributeValues: { ':how': how },
    },
  };
  // Settled or released already (a retried step, a sweep racing a Release): done.
  await transactUnlessFirstFails([
    mark,
    ...extra,
    ...charges.map(([key, charge]) => chargeItem(key, charge, false)),
  ]);
}

/**
 * Write `items` in one transaction, tried again while it meets another on the same items
 * (backups of one owner at once); false, with nothing written, when its first item's condition
 * fails (a failure of another's is thrown).
 */
async function transactUnlessFirstFails(items: TransactItem[]): Promise<boolean> {
  return retry(
    async () => {
      try {
        await dynamo().send(new TransactWriteCommand({ TransactItems: items }));
        return true;
      } catch (err) {
        if (cancellationCodes(err)[0] === 'ConditionalCheckFailed') return false;
        throw err;
      }
    },
    { attempts: 8, retryOn: isTransactionConflict, delayMs: exponential(15) },
  );
}

/**
 * Delete an image record when `condition` holds, giving its recorded charge back in the same
 * transaction. A failed condition throws as a plain conditional delete does
 * (ConditionalCheckFailedException).
 */
export async function deleteImageRecord(image: Image, condition: Condition): Promise<void> {
  if (!image.quota) return images.delete(image.id, condition);
  const { user, group, sizeMiB } = image.quota;
  const back = givenBack({ user, group, datastoreId: image.datastoreId }, { sizeMiB, images: 1 });
  const items: TransactItem[] = [
    {
      Delete: {
        TableName: images.name,
        Key: { id: image.id },
        ConditionExpression: condition.expression,
        ExpressionAttributeNames: condition.names,
        ExpressionAttributeValues: condition.values,
      },
    },
    ...back.map(([key, charge]) => chargeItem(key, charge, false)),
  ];
  if (!(await transactUnlessFirstFails(items))) {
    const failed = new Error(`Image ${image.id} changed before its record was deleted`);
    failed.name = 'ConditionalCheckFailedException';
    throw failed;
  }
}

/** The entries of `owner` for `datastoreIds` and for all datastores ('all' first). */
export async function readQuota(owner: QuotaOwner, datastoreIds: readonly number[]): Promise<QuotaEntry[]> {
  const scopes: QuotaScope[] = ['all', ...datastoreIds];
  const found = await readItems(scopes.map((s) => quotaKey(owner, s)));
  return scopes.map((s) => entryOf(s, found.get(quotaKey(owner, s))));
}

/**
 * Set `owner`'s limits on `scope` (keys absent in `limits` kept): the room is recomputed from
 * the usage read, on the condition that the usage did not change meanwhile. Answers the entry.
 */
export async function setQuota(
  owner: QuotaOwner,
  scope: QuotaScope,
  limits: QuotaLimits,
): Promise<QuotaEntry> {
  const name = quotaKey(owner, scope);
  return retry(
    async () => {
      const current = await quotaItems.find(name);
      const entry = entryOf(scope, current);
      const size = { ...entry.size, limit: limits.size ?? entry.size.limit };
      const count = { ...entry.images, limit: limits.images ?? entry.images.limit };
      const seen = (attr: 'sizeUsed' | 'imagesUsed', placeholder: string) =>
        current?.[attr] === undefined ? `attribute_not_exists(${attr})` : `${attr} = ${placeholder}`;
      await dynamo().send(
        new UpdateCommand({
          TableName: quotaItems.name,
          Key: { name },
          UpdateExpression:
            'SET sizeLimit = :sl, sizeRoom = :sr, sizeUsed = :su, imagesLimit = :il, imagesRoom = :ir, imagesUsed = :iu',
          ConditionExpression: `${seen('sizeUsed', ':su')} AND ${seen('imagesUsed', ':iu')}`,
          ExpressionAttributeValues: {
            ':sl': size.limit,
            ':sr': roomOf(size.limit, size.used),
            ':su': size.used,
            ':il': count.limit,
            ':ir': roomOf(count.limit, count.used),
            ':iu': count.used,
          },
        }),
      );
      return { datastore: scope, size, images: count };
    },
    { attempts: 8, retryOn: isConditionFailed, delayMs: exponential(10) },
  );
}
