/**
 * A typed view of one DynamoDB table: every item read is validated with its core/model.ts
 * schema, so a corrupt or outdated record fails at the boundary rather than deep in a handler.
 */

import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { z } from 'zod';
import { NotFound } from '#core/errors.ts';
import { dynamo } from '#platform/aws.ts';
import { tableName } from '../env.ts';
import type { TableSpec } from '../tables.ts';

/** A DynamoDB condition with its placeholders. */
export interface Condition {
  expression: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

/** One item of a TransactWriteItems. */
export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** True when a write failed because its condition did not hold. */
export function isConditionFailed(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}

/** The codes of a cancelled transaction's items, in order (`ConditionalCheckFailed`, `None`...). */
export function cancellationCodes(err: unknown): (string | undefined)[] {
  if (!(err instanceof Error) || err.name !== 'TransactionCanceledException') return [];
  return ((err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).map(
    (r) => r.Code,
  );
}

/** True when a transaction was cancelled because one of its conditions did not hold. */
export function isTransactionConditionFailed(err: unknown): boolean {
  return cancellationCodes(err).includes('ConditionalCheckFailed');
}

/** True when a transaction was cancelled because another one touched the same item. */
export function isTransactionConflict(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TransactionConflictException') return true;
  return cancellationCodes(err).includes('TransactionConflict');
}

/** DynamoDB's names for "too many requests", after the SDK's own retries gave up. */
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
]);

/**
 * True when DynamoDB refused a call for load, not for its content: throttling, or a transaction
 * that met another one on the same item (or was throttled). Trying again later can succeed. A
 * failed condition is not one of these: trying again would fail the same way.
 */
export function isTransientDynamoError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (THROTTLING.has(err.name) || err.name === 'TransactionConflictException') return true;
  const codes = cancellationCodes(err);
  return (
    !codes.includes('ConditionalCheckFailed') &&
    codes.some(
      (c) => c === 'TransactionConflict' || c === 'ThrottlingError' || c === 'ProvisionedThroughputExceeded',
    )
  );
}

type Key = string | number;

/** One table, its key attribute and the schema of its items. */
export class Table<S extends z.ZodType<Record<string, unknown>>> {
  constructor(
    readonly key: TableSpec['key'],
    readonly schema: S,
    /** How users name the object in messages: `VM 7 does not exist`. */
    readonly label: string,
    readonly keyName = 'id',
  ) {}

  /** The table's name in this deployment. */
  get name(): string {
    return tableName(this.key);
  }

  /** The item, or undefined. */
  async find(id: Key): Promise<z.output<S> | undefined> {
    const out = await dynamo().send(
      new GetCommand({ TableName: this.name, Key: { [this.keyName]: id }, ConsistentRead: true }),
    );
    return out.Item ? this.schema.parse(out.Item) : undefined;
  }

  /** The item; NotFound (`VM 7 does not exist`) when absent. */
  async get(id: Key): Promise<z.output<S>> {
    const item = await this.find(id);
    if (!item) throw new NotFound(`${this.label} ${id} does not exist`);
    return item;
  }

  /** Every item (paginated scan), optionally filtered. */
  async list(filter?: Condition): Promise<z.output<S>[]> {
    const items: z.output<S>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await dynamo().send(
        new ScanCommand({
          TableName: this.name,
          ExclusiveStartKey: start,
          ConsistentRead: true,
          FilterExpression: filter?.expression,
          ExpressionAttributeNames: filter?.names,
          ExpressionAttributeValues: filter?.values,
        }),
      );
      for (const raw of out.Items ?? []) items.push(this.schema.parse(raw));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Every item of an index partition, in sort-key order. */
  async query(index: string, condition: Condition, limit?: number): Promise<z.output<S>[]> {
    const items: z.output<S>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await dynamo().send(
        new QueryCommand({
          TableName: this.name,
          IndexName: index,
          KeyConditionExpression: condition.expression,
          ExpressionAttributeNames: condition.names,
          ExpressionAttributeValues: condition.values,
          ExclusiveStartKey: start,
          Limit: limit,
        }),
      );
      for (const raw of out.Items ?? []) items.push(this.schema.parse(raw));
      start = limit !== undefined && items.length >= limit ? undefined : out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Write the whole item (validated first), optionally only when `condition` holds. */
  async put(item: z.input<S>, condition?: Condition): Promise<z.output<S>> {
    const parsed = this.schema.parse(item);
    await dynamo().send(new PutCommand(this.putOf(parsed, condition)));
    return parsed;
  }

  /** {@link put}'s write (the item validated) as one item of a TransactWriteItems. */
  putItem(item: z.input<S>, condition?: Condition): TransactItem {
    return { Put: this.putOf(this.schema.parse(item), condition) };
  }

  private putOf(item: z.output<S>, condition?: Condition) {
    return {
      TableName: this.name,
      Item: item,
      ConditionExpression: condition?.expression,
      ExpressionAttributeNames: condition?.names,
      ExpressionAttributeValues: condition?.values,
    };
  }

  /** Set some attributes (and remove others) of an existing item; returns the new item. */
  async update(
    id: Key,
    set: Record<string, unknown>,
    options: { remove?: string[]; condition?: Condition } = {},
  ): Promise<z.output<S>> {
    try {
      const out = await dynamo().send(
        new UpdateCommand({
          ...(this.updateItem(id, set, options).Update as UpdateCommand['input']),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return this.schema.parse(out.Attributes);
    } catch (err) {
      // Without a caller condition, a failed check can only mean the item is gone.
      if (isConditionFailed(err) && !options.condition)
        throw new NotFound(`${this.label} ${id} does not exist`);
      throw err;
    }
  }

  /**
   * {@link update}'s write as one item of a TransactWriteItems: only on an existing item, and
   * only while `options.condition` holds.
   */
  updateItem(
    id: Key,
    set: Record<string, unknown>,
    options: { remove?: string[]; condition?: Condition } = {},
  ): TransactItem {
    const names: Record<string, string> = { '#pk': this.keyName, ...options.condition?.names };
    const values: Record<string, unknown> = { ...options.condition?.values };
    const sets: string[] = [];
    let i = 0;
    // `a.b` names a nested attribute (`backups.BACKUP_CONFIG`), so concurrent writers of
    // sibling attributes do not overwrite each other.
    const path = (field: string, tag: string): string =>
      field
        .split('.')
        .map((part, k) => {
          names[`#${tag}_${k}`] = part;
          return `#${tag}_${k}`;
        })
        .join('.');
    for (const [field, value] of Object.entries(set)) {
      if (value === undefined) continue;
      values[`:s${i}`] = value;
      sets.push(`${path(field, `s${i}`)} = :s${i}`);
      i++;
    }
    const removes = (options.remove ?? []).map((field, j) => path(field, `r${j}`));
    const parts = [
      sets.length ? `SET ${sets.join(', ')}` : '',
      removes.length ? `REMOVE ${removes.join(', ')}` : '',
    ];
    const condition = options.condition
      ? `attribute_exists(#pk) AND (${options.condition.expression})`
      : 'attribute_exists(#pk)';
    return {
      Update: {
        TableName: this.name,
        Key: { [this.keyName]: id },
        UpdateExpression: parts.filter(Boolean).join(' '),
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
      },
    };
  }

  /** Delete the item, optionally only when `condition` holds. Deleting a missing item is a no-op. */
  async delete(id: Key, condition?: Condition): Promise<void> {
    await dynamo().send(
      new DeleteCommand({
        TableName: this.name,
        Key: { [this.keyName]: id },
        ConditionExpression: condition?.expression,
        ExpressionAttributeNames: condition?.names,
        ExpressionAttributeValues: condition?.values,
      }),
    );
  }
}
