import { describe, expect, it } from 'vitest';
import { countsBetween, RequestCounter, tablesOf, writeItemsOf } from './request-counts.ts';

const body = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('tablesOf', () => {
  it('names the table of a single request, the tables of a batch and of a transaction, once each', () => {
    expect(tablesOf(body({ TableName: 'lifeboat-vms', Key: {} }))).toEqual(['lifeboat-vms']);
    expect(tablesOf(body({ RequestItems: { 'lifeboat-images': [], 'lifeboat-vms': [] } }))).toEqual([
      'lifeboat-images',
      'lifeboat-vms',
    ]);
    expect(
      tablesOf(
        body({
          TransactItems: [
            { Update: { TableName: 'lifeboat-counters' } },
            { Put: { TableName: 'lifeboat-jobs' } },
            { ConditionCheck: { TableName: 'lifeboat-counters' } },
          ],
        }),
      ),
    ).toEqual(['lifeboat-counters', 'lifeboat-jobs']);
    expect(tablesOf(Buffer.from('not json'))).toEqual([]);
  });
});

describe('writeItemsOf', () => {
  it('counts one item per single write, each item of a transaction or batch, none for a read', () => {
    expect(writeItemsOf('UpdateItem', body({}))).toBe(1);
    expect(writeItemsOf('GetItem', body({}))).toBe(0);
    expect(
      writeItemsOf('TransactWriteItems', body({ TransactItems: [{ Update: {} }, { ConditionCheck: {} }] })),
    ).toBe(2);
    expect(writeItemsOf('BatchWriteItem', body({ RequestItems: { a: [{}, {}], b: [{}] } }))).toBe(3);
  });
});

describe('RequestCounter', () => {
  it('counts by caller, table and operation, and a reading minus an earlier one is what came between', () => {
    const callers: Record<string, string> = { AKIA1: 'role:ApiRole', AKIA2: 'host' };
    const counter = new RequestCounter((key) => callers[key]);
    const get = { 'x-amz-target': 'DynamoDB_20120810.GetItem' };
    counter.record('AKIA1', get, body({ TableName: 'lifeboat-vms' }));
    const before = counter.snapshot();
    counter.record('AKIA1', get, body({ TableName: 'lifeboat-vms' }));
    counter.record(
      'AKIA2',
      { 'x-amz-target': 'DynamoDB_20120810.UpdateItem' },
      body({ TableName: 'lifeboat-hosts' }),
    );
    counter.record('AKIA9', get, body({ TableName: 'lifeboat-vms' }));
    expect(countsBetween(before, counter.snapshot())).toEqual({
      total: 3,
      byCaller: { 'role:ApiRole': 1, host: 1, unknown: 1 },
      byTable: { 'lifeboat-vms': 2, 'lifeboat-hosts': 1 },
      byOperation: { GetItem: 2, UpdateItem: 1 },
      byCallerOperation: { 'role:ApiRole GetItem': 1, 'host UpdateItem': 1, 'unknown GetItem': 1 },
      writeItemsByCallerOperation: { 'host UpdateItem': 1 },
    });
  });
});
