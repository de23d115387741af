import { describe, expect, it } from 'vitest';
import { FUNCTIONS } from './manifest.ts';

describe('functions/manifest.ts', () => {
  it.each(FUNCTIONS.map((f) => [f.id, f] as const))('%s entry exports its handler', async (_id, spec) => {
    const mod = (await import(`../${spec.entry}`)) as Record<string, unknown>;
    expect(typeof mod[spec.handler]).toBe('function');
  });
});

describe('step input validation', () => {
  it('rejects a malformed state input with a ValidationError naming the field, before any write', async () => {
    const { handler } = await import('./tasks/admit-backup.ts');
    await expect(handler({ executionId: '1', vmId: 'x', datastoreId: 1 })).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringContaining('AdmitBackup input: vmId'),
    });
  });
});
