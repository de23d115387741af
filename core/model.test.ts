import { describe, expect, it } from 'vitest';
import { ExecutionKind, takesSlot } from './model.ts';

describe('takesSlot: which operations hold a MAX_BACKUPS / MAX_BACKUPS_HOST slot', () => {
  it.each(ExecutionKind.options.map((kind) => [kind]))('%s', (kind) => {
    // Whatever reads or writes whole disks waits for a slot; bookkeeping on the datastore does not.
    const heavy = ['backup', 'restore', 'verify', 'drill'];
    expect(takesSlot(kind)).toBe(heavy.includes(kind));
  });
});
