import { describe, expect, it } from 'vitest';
import { describeFailure, taskDisk } from './common.ts';

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
