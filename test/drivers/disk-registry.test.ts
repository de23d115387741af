/**
 * Every disk driver of the registry passes the conformance suite: each has a test file
 * `test/drivers/disk-<name>.test.ts` that runs `diskConformance('<name>', ...)`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diskDrivers } from '#drivers/disk/registry.ts';

describe('disk driver registry', () => {
  it.each(
    diskDrivers()
      .all()
      .map((d) => d.name),
  )('driver %s runs the disk conformance suite', async (name) => {
    const text = await readFile(join(import.meta.dirname, `disk-${name}.test.ts`), 'utf8');
    expect(text).toContain(`diskConformance('${name}'`);
  });
});
