import { afterEach, describe, expect, it } from 'vitest';
import { progressTableName } from '#platform/progress.ts';
import { tableName } from '../env.ts';

describe('the progress table name', () => {
  const saved = process.env.TABLE_PROGRESS;
  afterEach(() => {
    if (saved === undefined) delete process.env.TABLE_PROGRESS;
    else process.env.TABLE_PROGRESS = saved;
  });

  it('is the same for the runner (platform/) and the API (functions/tables.ts)', () => {
    delete process.env.TABLE_PROGRESS;
    expect(progressTableName()).toBe(tableName('progress'));
    process.env.TABLE_PROGRESS = 'stack-Progress-123';
    expect(progressTableName()).toBe('stack-Progress-123');
    expect(tableName('progress')).toBe('stack-Progress-123');
  });
});
