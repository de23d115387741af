/**
 * What IAM checks for a DynamoDB JSON request (`X-Amz-Target: DynamoDB_20120810.<Op>`): the
 * action, the table (or index) ARN, and the fine-grained condition keys AWS fills in:
 * `dynamodb:LeadingKeys` (partition key values of the items touched), `dynamodb:Attributes`
 * (top-level attribute names the request names), `dynamodb:ReturnValues`, `dynamodb:Select`.
 * Batch and transaction calls are one check per table (Batch*) or per item (Transact*, whose
 * items IAM authorizes as the single-item actions).
 */
import { TABLES } from '#functions/tables.ts';
import { LOCAL_ACCOUNT } from '../../config.ts';
import type { Check } from '../evaluate.ts';

type Json = Record<string, unknown>;

const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The value of a key attribute as IAM compares it (a string, a number's text). */
function keyText(value: unknown): string | undefined {
  const av = obj(value);
  return str(av.S) ?? str(av.N) ?? str(av.B);
}

/** The partition key name of a local table (or one of its indexes), from functions/tables.ts. */
function partitionKeyOf(table: string, index?: string): string | undefined {
  const spec = TABLES.find((t) => `lifeboat-${t.key}` === table || t.key === table);
  if (!spec) return undefined;
  if (index) return spec.indexes.find((i) => i.name === index)?.partitionKey.name;
  return spec.partitionKey.name;
}

const KEYWORDS = new Set(['SET', 'REMOVE', 'ADD', 'DELETE', 'AND', 'OR', 'NOT', 'BETWEEN', 'IN']);
/** A document path's first element: `#name` or a bare name, not after `:`, `.` or a word. */
const PATH = /(?<![:.\w#])(#\w+|[A-Za-z_]\w*)(\s*\()?/g;

/** Top-level attribute names an expression names, aliases resolved. */
export function expressionAttributes(expression: string | undefined, names: Json): string[] {
  if (!expression) return [];
  const found: string[] = [];
  for (const match of expression.matchAll(PATH)) {
    const [, token, call] = match;
    if (!token || call) continue; // a function: if_not_exists(...), list_append(...), size(...)
    if (KEYWORDS.has(token.toUpperCase()) && !token.startsWith('#')) continue;
    const name = token.startsWith('#') ? str(names[token]) : token;
    if (name !== undefined) found.push(name);
  }
  return found;
}

/** One check on one table; `keys` are the items' key maps, `attributes` the names the request uses. */
function tableCheck(
  action: string,
  region: string,
  table: string,
  opts: { keys?: unknown[]; attributes?: string[]; index?: string; leading?: string[]; extra?: Json },
): Check {
  const name = table.startsWith('arn:')
    ? (table.slice(table.indexOf('/') + 1).split('/')[0] ?? table)
    : table;
  const base = table.startsWith('arn:')
    ? table
    : `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT}:table/${table}`;
  const resource = opts.index ? `${base}/index/${opts.index}` : base;
  const context: Record<string, string | string[]> = {};
  const pk = partitionKeyOf(name);
  const leading = [...(opts.leading ?? [])];
  for (const key of opts.keys ?? []) {
    const item = obj(key);
    const attr = pk ?? (Object.keys(item).length === 1 ? Object.keys(item)[0] : undefined);
    const text = attr === undefined ? undefined : keyText(item[attr]);
    if (text !== undefined) leading.push(text);
  }
  if (leading.length) context['dynamodb:LeadingKeys'] = [...new Set(leading)];
  if (opts.attributes?.length) context['dynamodb:Attributes'] = [...new Set(opts.attributes)];
  for (const [k, v] of Object.entries(opts.extra ?? {})) {
    if (typeof v === 'string') context[`dynamodb:${k}`] = v;
  }
  return { action, resource, context };
}

/** Names in an item, or in a key plus an update. */
const itemAttributes = (item: unknown) => Object.keys(obj(item));

/** The single-item operations: PutItem, UpdateItem, DeleteItem, GetItem, ConditionCheckItem. */
function itemCheck(action: string, region: string, p: Json, extra: Json = {}): Check {
  const names = obj(p.ExpressionAttributeNames);
  const table = str(p.TableName) ?? '*';
  const op = action.slice('dynamodb:'.length);
  let attributes: string[] = [];
  if (op === 'PutItem') attributes = itemAttributes(p.Item);
  else if (op === 'UpdateItem') {
    attributes = [
      ...itemAttributes(p.Key),
      ...expressionAttributes(str(p.UpdateExpression), names),
      ...Object.keys(obj(p.AttributeUpdates)),
    ];
  } else if (op === 'GetItem') {
    const projected = [
      ...expressionAttributes(str(p.ProjectionExpression), names),
      ...(Array.isArray(p.AttributesToGet) ? p.AttributesToGet.filter((a) => typeof a === 'string') : []),
    ];
    if (projected.length) attributes = [...itemAttributes(p.Key), ...projected];
  }
  return tableCheck(action, region, table, {
    keys: [op === 'PutItem' ? p.Item : p.Key],
    attributes,
    extra: { ReturnValues: p.ReturnValues, ...extra },
  });
}

/** Leading keys of a Query: the partition key's value in `KeyConditionExpression` (`#pk = :v`). */
function queryLeadingKeys(p: Json, table: string): string[] {
  const expression = str(p.KeyConditionExpression);
  const pk = partitionKeyOf(table, str(p.IndexName));
  if (!expression || !pk) return [];
  const names = obj(p.ExpressionAttributeNames);
  const values = obj(p.ExpressionAttributeValues);
  const out: string[] = [];
  for (const m of expression.matchAll(/(#?\w+)\s*=\s*(:\w+)|(:\w+)\s*=\s*(#?\w+)/g)) {
    const attr = m[1] ?? m[4] ?? '';
    const value = m[2] ?? m[3] ?? '';
    const name = attr.startsWith('#') ? str(names[attr]) : attr;
    const text = name === pk ? keyText(values[value]) : undefined;
    if (text !== undefined) out.push(text);
  }
  for (const [attr, cond] of Object.entries(obj(p.KeyConditions))) {
    const first = Array.isArray(obj(cond).AttributeValueList)
      ? (obj(cond).AttributeValueList as unknown[])[0]
      : undefined;
    const text = attr === pk ? keyText(first) : undefined;
    if (text !== undefined) out.push(text);
  }
  return out;
}

/** The checks of one DynamoDB request. */
export function dynamodbChecks(operation: string, p: Json, region: string): Check[] {
  const action = `dynamodb:${operation}`;
  switch (operation) {
    case 'PutItem':
    case 'UpdateItem':
    case 'DeleteItem':
    case 'GetItem':
      return [itemCheck(action, region, p)];
    case 'Query':
    case 'Scan': {
      const table = str(p.TableName) ?? '*';
      const names = obj(p.ExpressionAttributeNames);
      const projected = expressionAttributes(str(p.ProjectionExpression), names);
      return [
        tableCheck(action, region, table, {
          index: str(p.IndexName),
          leading: operation === 'Query' ? queryLeadingKeys(p, table) : [],
          attributes: projected,
          extra: { Select: p.Select },
        }),
      ];
    }
    case 'BatchGetItem':
      return Object.entries(obj(p.RequestItems)).map(([table, request]) => {
        const r = obj(request);
        return tableCheck(action, region, table, {
          keys: Array.isArray(r.Keys) ? r.Keys : [],
          attributes: expressionAttributes(str(r.ProjectionExpression), obj(r.ExpressionAttributeNames)),
        });
      });
    case 'BatchWriteItem':
      return Object.entries(obj(p.RequestItems)).map(([table, writes]) => {
        const list = Array.isArray(writes) ? writes.map(obj) : [];
        const keys = list.map((w) => obj(w.PutRequest).Item ?? obj(w.DeleteRequest).Key);
        const attributes = list.flatMap((w) => itemAttributes(obj(w.PutRequest).Item));
        return tableCheck(action, region, table, { keys, attributes });
      });
    case 'TransactWriteItems':
    case 'TransactGetItems': {
      const items = Array.isArray(p.TransactItems) ? p.TransactItems.map(obj) : [];
      const actions: Record<string, string> = {
        Put: 'PutItem',
        Update: 'UpdateItem',
        Delete: 'DeleteItem',
        ConditionCheck: 'ConditionCheckItem',
        Get: 'GetItem',
      };
      return items.flatMap((item) =>
        Object.entries(item)
          .filter(([kind]) => kind in actions)
          .map(([kind, body]) => {
            const b = obj(body);
            // A transaction item's ReturnValuesOnConditionCheckFailure is not ReturnValues.
            return itemCheck(`dynamodb:${actions[kind]}`, region, { ...b, ReturnValues: undefined });
          }),
      );
    }
    default: {
      const table = str(p.TableName) ?? str(p.ResourceArn);
      return [table ? tableCheck(action, region, table, {}) : { action, resource: '*' }];
    }
  }
}
