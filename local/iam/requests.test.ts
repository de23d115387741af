import { describe, expect, it } from 'vitest';
import { requestChecks } from './enforce.ts';
import { dynamodbChecks, expressionAttributes } from './requests/dynamodb.ts';
import { lambdaChecks } from './requests/lambda.ts';
import { schedulerChecks } from './requests/scheduler.ts';
import { parseSqsRequest, sqsChecks } from './requests/sqs.ts';
import { stepFunctionsChecks } from './requests/stepfunctions.ts';

const R = 'eu-west-1';
const table = (name: string) => `arn:aws:dynamodb:${R}:000000000000:table/${name}`;

describe('DynamoDB requests', () => {
  it('UpdateItem: the partition key value, the key and updated attribute names, ReturnValues', () => {
    const [check] = dynamodbChecks(
      'UpdateItem',
      {
        TableName: 'lifeboat-progress',
        Key: { id: { S: '3/exec-1' } },
        UpdateExpression:
          'SET #a0 = :v0, #a1 = if_not_exists(#a1, :v1) REMOVE stale.nested[0] ADD bytesDone :n',
        ExpressionAttributeNames: { '#a0': 'phase', '#a1': 'bytesTotal' },
        ExpressionAttributeValues: { ':v0': { S: 'x' }, ':v1': { N: '1' }, ':n': { N: '2' } },
        ReturnValues: 'NONE',
      },
      R,
    );
    expect(check?.action).toBe('dynamodb:UpdateItem');
    expect(check?.resource).toBe(table('lifeboat-progress'));
    expect(check?.context).toEqual({
      'dynamodb:LeadingKeys': ['3/exec-1'],
      'dynamodb:Attributes': ['id', 'phase', 'bytesTotal', 'stale', 'bytesDone'],
      'dynamodb:ReturnValues': 'NONE',
    });
  });

  it('PutItem: every attribute of the item; GetItem: projected names only when projected', () => {
    const [put] = dynamodbChecks(
      'PutItem',
      { TableName: 'lifeboat-hosts', Item: { id: { N: '7' }, name: { S: 'a' } } },
      R,
    );
    expect(put?.context).toEqual({ 'dynamodb:LeadingKeys': ['7'], 'dynamodb:Attributes': ['id', 'name'] });
    const [get] = dynamodbChecks('GetItem', { TableName: 'lifeboat-hosts', Key: { id: { N: '7' } } }, R);
    expect(get?.context).toEqual({ 'dynamodb:LeadingKeys': ['7'] });
    const [projected] = dynamodbChecks(
      'GetItem',
      {
        TableName: 'lifeboat-hosts',
        Key: { id: { N: '7' } },
        ProjectionExpression: '#n, queueUrl',
        ExpressionAttributeNames: { '#n': 'name' },
      },
      R,
    );
    expect(projected?.context?.['dynamodb:Attributes']).toEqual(['id', 'name', 'queueUrl']);
  });

  it('Query on an index: the index ARN and the partition key of the key condition', () => {
    const [check] = dynamodbChecks(
      'Query',
      {
        TableName: 'lifeboat-vms',
        IndexName: 'byUuid',
        KeyConditionExpression: '#u = :u',
        ExpressionAttributeNames: { '#u': 'uuid' },
        ExpressionAttributeValues: { ':u': { S: 'abc' } },
      },
      R,
    );
    expect(check?.resource).toBe(`${table('lifeboat-vms')}/index/byUuid`);
    expect(check?.context).toEqual({ 'dynamodb:LeadingKeys': ['abc'] });
  });

  it('Batch calls are one check per table; transactions one per item, as the single-item action', () => {
    const batch = dynamodbChecks(
      'BatchWriteItem',
      {
        RequestItems: {
          'lifeboat-jobs': [
            { PutRequest: { Item: { id: { N: '1' }, x: { S: 'y' } } } },
            { DeleteRequest: { Key: { id: { N: '2' } } } },
          ],
          'lifeboat-images': [{ DeleteRequest: { Key: { id: { N: '9' } } } }],
        },
      },
      R,
    );
    expect(batch.map((c) => [c.action, c.resource, c.context?.['dynamodb:LeadingKeys']])).toEqual([
      ['dynamodb:BatchWriteItem', table('lifeboat-jobs'), ['1', '2']],
      ['dynamodb:BatchWriteItem', table('lifeboat-images'), ['9']],
    ]);
    const tx = dynamodbChecks(
      'TransactWriteItems',
      {
        TransactItems: [
          { Put: { TableName: 'lifeboat-vms', Item: { id: { N: '1' } } } },
          {
            Update: {
              TableName: 'lifeboat-counters',
              Key: { name: { S: 'vm' } },
              UpdateExpression: 'ADD n :one',
            },
          },
          {
            ConditionCheck: {
              TableName: 'lifeboat-hosts',
              Key: { id: { N: '4' } },
              ConditionExpression: 'attribute_exists(id)',
            },
          },
          { Delete: { TableName: 'lifeboat-users', Key: { name: { S: 'u' } } } },
        ],
      },
      R,
    );
    expect(tx.map((c) => c.action)).toEqual([
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:ConditionCheckItem',
      'dynamodb:DeleteItem',
    ]);
    expect(tx.map((c) => c.resource)).toEqual(
      ['lifeboat-vms', 'lifeboat-counters', 'lifeboat-hosts', 'lifeboat-users'].map(table),
    );
    expect(tx[1]?.context?.['dynamodb:LeadingKeys']).toEqual(['vm']);
  });

  it('table-level and account-level calls', () => {
    expect(dynamodbChecks('DescribeTable', { TableName: 'lifeboat-vms' }, R)).toEqual([
      { action: 'dynamodb:DescribeTable', resource: table('lifeboat-vms'), context: {} },
    ]);
    expect(dynamodbChecks('ListTables', {}, R)).toEqual([{ action: 'dynamodb:ListTables', resource: '*' }]);
  });

  it('expression names: functions, keywords and value placeholders are not attributes', () => {
    expect(
      expressionAttributes('attribute_not_exists(id) AND #s IN (:a, :b) OR size(tags) > :n', {
        '#s': 'state',
      }),
    ).toEqual(['id', 'state', 'tags']);
  });
});

describe('SQS requests', () => {
  it('JSON protocol: the queue of the QueueUrl; batches as the single action', () => {
    const parsed = parseSqsRequest(
      'AmazonSQS.ReceiveMessage',
      'application/x-amz-json-1.0',
      JSON.stringify({ QueueUrl: 'http://127.0.0.1:9/000000000000/lifeboat-host-4' }),
      new URLSearchParams(),
    );
    expect(parsed?.operation).toBe('ReceiveMessage');
    expect(sqsChecks(parsed?.operation ?? '', parsed?.params ?? {}, R)).toEqual([
      { action: 'sqs:ReceiveMessage', resource: `arn:aws:sqs:${R}:000000000000:lifeboat-host-4` },
    ]);
    expect(sqsChecks('DeleteMessageBatch', { QueueUrl: 'http://h/000000000000/q' }, R)[0]?.action).toBe(
      'sqs:DeleteMessage',
    );
    expect(sqsChecks('CreateQueue', { QueueName: 'lifeboat-host-9' }, R)[0]?.resource).toBe(
      `arn:aws:sqs:${R}:000000000000:lifeboat-host-9`,
    );
    expect(sqsChecks('ListQueues', {}, R)).toEqual([{ action: 'sqs:ListQueues', resource: '*' }]);
  });

  it('query protocol: Action and QueueUrl of the form body', () => {
    const parsed = parseSqsRequest(
      undefined,
      'application/x-www-form-urlencoded; charset=utf-8',
      'Action=SendMessage&QueueUrl=http%3A%2F%2Fh%2F000000000000%2Flifeboat-host-2&MessageBody=x',
      new URLSearchParams(),
    );
    expect(sqsChecks(parsed?.operation ?? '', parsed?.params ?? {}, R)).toEqual([
      { action: 'sqs:SendMessage', resource: `arn:aws:sqs:${R}:000000000000:lifeboat-host-2` },
    ]);
  });
});

describe('Step Functions, Lambda and Scheduler requests', () => {
  it('Step Functions: the machine or execution named, * for task tokens', () => {
    expect(stepFunctionsChecks('StartExecution', { stateMachineArn: 'arn:m' })).toEqual([
      { action: 'states:StartExecution', resource: 'arn:m' },
    ]);
    expect(stepFunctionsChecks('DescribeExecution', { executionArn: 'arn:e' })[0]?.resource).toBe('arn:e');
    expect(stepFunctionsChecks('SendTaskSuccess', { taskToken: 't' })[0]?.resource).toBe('*');
  });

  it('Lambda Invoke: the function ARN from a name, an ARN, a qualifier', () => {
    const at = (path: string) => lambdaChecks('POST', new URL(path, 'http://x'), R)?.[0]?.resource;
    expect(at('/2015-03-31/functions/lifeboat-Api/invocations')).toBe(
      `arn:aws:lambda:${R}:000000000000:function:lifeboat-Api`,
    );
    expect(
      at(
        `/2015-03-31/functions/${encodeURIComponent('arn:aws:lambda:us-east-1:000000000000:function:f')}/invocations`,
      ),
    ).toBe('arn:aws:lambda:us-east-1:000000000000:function:f');
    expect(at('/2015-03-31/functions/f/invocations?Qualifier=live')).toBe(
      `arn:aws:lambda:${R}:000000000000:function:f:live`,
    );
    expect(lambdaChecks('GET', new URL('/2015-03-31/functions', 'http://x'), R)).toBeUndefined();
  });

  it('Scheduler: the schedule ARN in its group, and iam:PassRole of the target role on create', () => {
    const body = JSON.stringify({
      GroupName: 'lifeboat',
      Target: { Arn: 'arn:f', RoleArn: 'arn:aws:iam::000000000000:role/R' },
    });
    expect(schedulerChecks('POST', new URL('/schedules/vm-1', 'http://x'), body, R)).toEqual([
      {
        action: 'scheduler:CreateSchedule',
        resource: `arn:aws:scheduler:${R}:000000000000:schedule/lifeboat/vm-1`,
      },
      {
        action: 'iam:PassRole',
        resource: 'arn:aws:iam::000000000000:role/R',
        context: { 'iam:PassedToService': 'scheduler.amazonaws.com' },
      },
    ]);
    expect(
      schedulerChecks('DELETE', new URL('/schedules/vm-1?groupName=lifeboat', 'http://x'), '', R),
    ).toEqual([
      {
        action: 'scheduler:DeleteSchedule',
        resource: `arn:aws:scheduler:${R}:000000000000:schedule/lifeboat/vm-1`,
      },
    ]);
  });

  it('a request the service cannot read has nothing to authorize (the service refuses it)', () => {
    const request = {
      method: 'POST',
      url: '/',
      headers: { 'x-amz-target': 'DynamoDB_20120810.GetItem' },
      body: Buffer.from('{not json'),
    };
    expect(requestChecks('dynamodb', request, R)).toBeUndefined();
  });
});
