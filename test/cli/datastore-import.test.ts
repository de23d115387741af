/**
 * `lifeboat datastore import DSID [--wait]` against a fake API: it queues an import and prints
 * its execution; `--wait` follows it and prints what it did ("N images imported, M already
 * known", the images and the skipped backups), `--json` the result; a refusal is exit 1.
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { execution } from './fixtures.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi('tok-h14import');
const { serve } = api;
const RESULT = {
  imported: 2,
  known: 1,
  imageIds: [7, 12],
  skipped: [{ backupId: 'h14import-orphan', reason: 'an increment whose FULL is not stored' }],
  skippedCount: 1,
};

describe('datastore import in the CLI', () => {
  it('queues one and prints its execution; --wait prints what it imported', async () => {
    const queued = execution('QUEUED', { id: '91', kind: 'import', datastoreId: 100, vmId: undefined });
    const env = await serve({
      'POST /datastores/100/import': { status: 202, body: queued },
      'GET /executions/91': (_req, hit) => ({
        status: 200,
        body: execution(hit < 2 ? 'RUNNING' : 'SUCCEEDED', {
          id: '91',
          kind: 'import',
          datastoreId: 100,
          vmId: undefined,
          params: { result: RESULT },
        }),
      }),
    });
    const plain = await runCli(['datastore', 'import', '100'], { env });
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^execution 91 QUEUED/);

    const waited = await runCli(['datastore', 'import', '100', '--wait'], {
      env: { ...env, LIFEBOAT_POLL_INTERVAL_MS: '50' },
    });
    expect(waited.exitCode, waited.stderr).toBe(0);
    expect(waited.stdout.trimEnd().split('\n')).toEqual([
      '2 images imported, 1 already known, 1 backups skipped',
      'images: 7 12',
      'skipped h14import-orphan: an increment whose FULL is not stored',
    ]);
    const json = await runCli(['datastore', 'import', '100', '--wait', '--json'], {
      env: { ...env, LIFEBOAT_POLL_INTERVAL_MS: '50' },
    });
    expect(JSON.parse(json.stdout)).toEqual(RESULT);
  });

  it('a refusal (not an admin) is exit 1 with Forbidden', async () => {
    const env = await serve({
      'POST /datastores/100/import': {
        status: 403,
        body: { error: 'Forbidden', message: 'only admins may import the images a datastore holds' },
      },
    });
    const result = await runCli(['datastore', 'import', '100'], { env });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('Forbidden');
  });
});
