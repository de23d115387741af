/**
 * The retry contract is real: each name the state machines retry (TRANSIENT_ERRORS) is created
 * by some code path outside the tests, so a Retry never waits for an error nothing raises. The
 * paths themselves are driven by functions/tasks/common.test.ts (Throttled: DynamoDB throttling
 * and transaction conflicts in a step) and drivers/datastore/restic-repo.test.ts (DatastoreLocked:
 * restic's "repository is already locked").
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRANSIENT_ERRORS } from '#core/errors.ts';
import { PROJECT_ROOT } from '#infra/functions.ts';

const FOLDERS = ['core', 'platform', 'functions', 'drivers', 'runner', 'cli', 'local'];

const code = FOLDERS.flatMap((dir) =>
  readdirSync(path.join(PROJECT_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => {
      const file = path.join(e.parentPath, e.name);
      return { file: path.relative(PROJECT_ROOT, file), text: readFileSync(file, 'utf8') };
    }),
);

describe('every transient error name is raised somewhere', () => {
  it.each([...TRANSIENT_ERRORS])('%s is constructed outside the tests', (name) => {
    // `new X(`: thrown where made, or made by a mapper whose result is thrown (ResticRepo.typed).
    const where = code.filter(({ text }) => new RegExp(`\\bnew ${name}\\(`).test(text)).map((c) => c.file);
    expect(where, `${name} is in TRANSIENT_ERRORS but no code raises it`).not.toEqual([]);
  });

  it('names the paths that raise them', () => {
    const raisers = (name: string) =>
      code.filter(({ text }) => new RegExp(`\\bnew ${name}\\(`).test(text)).map((c) => c.file);
    expect(raisers('Throttled')).toContain('functions/middleware.ts');
    expect(raisers('DatastoreLocked')).toContain('drivers/datastore/restic-repo.ts');
  });
});
