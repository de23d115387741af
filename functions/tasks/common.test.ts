import {
  ConditionalCheckFailedException,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ThrottlingException,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { TRANSIENT_ERRORS } from '#core/errors.ts';
import { describeFailure, StepInput, step, taskDisk } from './common.ts';

/** What a step that met `error` throws to Lambda (its name is the errorType Retry matches). */
async function thrownBy(error: Error): Promise<Error> {
  const run = step('TestStep', StepInput, async () => {
    throw error;
  });
  return run({ executionId: 'e-1' }).then(
    () => {
      throw new Error('the step did not throw');
    },
    (e: Error) => e,
  );
}
const meta = { $metadata: {}, message: 'from DynamoDB' };
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({ ...meta, CancellationReasons: codes.map((Code) => ({ Code })) });

describe('step: DynamoDB refusing for load is Throttled, which the state machines retry', () => {
  it.each([
    ['ProvisionedThroughputExceededException', new ProvisionedThroughputExceededException(meta)],
    ['ThrottlingException', new ThrottlingException(meta)],
    ['RequestLimitExceeded', new RequestLimitExceeded(meta)],
    ['TransactionConflictException', new TransactionConflictException(meta)],
    ['a transaction cancelled for a conflict', cancelled('None', 'TransactionConflict')],
    ['a transaction cancelled for throttling', cancelled('ThrottlingError', 'None')],
  ])('%s becomes Throttled', async (_, error) => {
    const thrown = await thrownBy(error);
    expect(thrown.name).toBe('Throttled');
    expect(TRANSIENT_ERRORS).toContain(thrown.name);
    expect(thrown.message).toBe(`TestStep: DynamoDB is busy (${error.name}), try again`);
    expect(thrown.cause).toBe(error);
  });

  it.each([
    ['a failed condition', new ConditionalCheckFailedException(meta)],
    ['a transaction cancelled by a condition', cancelled('ConditionalCheckFailed', 'None')],
    [
      'a condition and a conflict in one transaction',
      cancelled('ConditionalCheckFailed', 'TransactionConflict'),
    ],
    ['a transaction cancelled for a validation error', cancelled('ValidationError')],
  ])('%s is not retried: it leaves as thrown', async (_, error) => {
    expect(await thrownBy(error)).toBe(error);
  });
});

describe('describeFailure', () => {
  it('reads a Lambda error from the JSON Cause', () => {
    const cause = JSON.stringify({
      errorType: 'Conflict',
      errorMessage: 'VM 3 has a backup in progress (execution 17)',
    });
    expect(describeFailure({ Error: 'Conflict', Cause: cause })).toEqual({
      name: 'Conflict',
      message: 'VM 3 has a backup in progress (execution 17)',
    });
  });

  it('keeps the runner error name and its readable cause', () => {
    expect(describeFailure({ Error: 'DatastoreLocked', Cause: 'restic repository is locked' })).toEqual({
      name: 'DatastoreLocked',
      message: 'restic repository is locked',
    });
  });

  it('falls back to the error name when there is no cause', () => {
    expect(describeFailure({ Error: 'States.HeartbeatTimeout' })).toEqual({
      name: 'States.HeartbeatTimeout',
      message: 'States.HeartbeatTimeout',
    });
    expect(describeFailure(undefined)).toEqual({ name: 'Error', message: 'Error' });
  });
});

describe('taskDisk', () => {
  it('sends rbd disks to the rbd driver and files to qcow2', () => {
    const base = { id: 0, target: 'vda', source: 'pool/img', size: 1, volatile: false, canIncrement: false };
    expect(taskDisk({ ...base, format: 'rbd' }).driver).toBe('rbd');
    expect(taskDisk({ ...base, format: 'raw' }).driver).toBe('qcow2');
  });
});
