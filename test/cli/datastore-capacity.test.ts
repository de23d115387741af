/**
 * `lifeboat datastore list | show | monitor` and capacity, against a fake API: the TOTAL / FREE /
 * USED columns filled from the datastore's figures (empty when unknown), `--json` with null for
 * an unknown figure (CLI.md), and `monitor --wait` following the execution, then showing them.
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { DATASTORE, execution } from './fixtures.ts';
import { runCli } from './run-cli.ts';

const MiB = 1024 * 1024;
const MEASURED = {
  ...DATASTORE,
  totalBytes: 1024 * MiB,
  freeBytes: 300 * MiB,
  usedBytes: 5 * MiB + 512 * 1024,
  monitoredAt: '2026-12-06T12:00:00.000Z',
};
/** An rsync-only server: the filesystem unknown, the repositories' bytes known. */
const RSYNC_ONLY = { ...DATASTORE, id: 101, name: 'ds2', driver: 'rsync', usedBytes: 2048 };

const api = useFakeApi('tok-cap');
const { serve } = api;

describe('datastore capacity in the CLI', () => {
  it('list shows TOTAL, FREE and USED, and - (not 0) where unknown', async () => {
    const env = await serve({ 'GET /datastores': { status: 200, body: { items: [MEASURED, RSYNC_ONLY] } } });
    const result = await runCli(['datastore', 'list'], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+DRIVER\s+TOTAL\s+FREE\s+USED/);
    expect(lines[1]).toMatch(/^100\s+ds1\s+restic\s+1\.0 GiB\s+300\.0 MiB\s+5\.5 MiB\s*$/);
    expect(lines[2]).toMatch(/^101\s+ds2\s+rsync\s+-\s+-\s+2\.0 KiB\s*$/);
  });

  it('--json gives null for an unknown figure, the numbers otherwise', async () => {
    const env = await serve({ 'GET /datastores': { status: 200, body: { items: [MEASURED, RSYNC_ONLY] } } });
    const result = await runCli(['datastore', 'list', '--json'], { env });
    const [measured, rsyncOnly] = JSON.parse(result.stdout);
    expect(measured).toMatchObject({ totalBytes: 1024 * MiB, freeBytes: 300 * MiB, usedBytes: 5.5 * MiB });
    expect(rsyncOnly).toMatchObject({ totalBytes: null, freeBytes: null, usedBytes: 2048 });
  });

  it('monitor queues one and prints its execution; --wait follows it, then shows the figures', async () => {
    const queued = execution('QUEUED', { id: '77', kind: 'monitor', datastoreId: 100, vmId: undefined });
    const env = await serve({
      'POST /datastores/100/monitor': { status: 202, body: queued },
      'GET /executions/77': (_req, hit) => ({
        status: 200,
        body: execution(hit < 2 ? 'RUNNING' : 'SUCCEEDED', {
          id: '77',
          kind: 'monitor',
          datastoreId: 100,
          vmId: undefined,
        }),
      }),
      'GET /datastores/100': { status: 200, body: MEASURED },
    });
    const plain = await runCli(['datastore', 'monitor', '100'], { env });
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toBe('execution 77 QUEUED (monitor: datastore 100)');
    const waited = await runCli(['datastore', 'monitor', '100', '--wait', '--json'], {
      env: { ...env, LIFEBOAT_POLL_INTERVAL_MS: '50' },
    });
    expect(waited.exitCode, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({
      id: 100,
      freeBytes: 300 * MiB,
      monitoredAt: MEASURED.monitoredAt,
    });
    expect(api.requests.filter((r) => r.path === '/datastores/100/monitor')).toHaveLength(2);
  });

  it('monitor --wait of a failed monitor exits 1 with its error', async () => {
    const env = await serve({
      'POST /datastores/100/monitor': {
        status: 202,
        body: execution('QUEUED', { id: '78', kind: 'monitor' }),
      },
      'GET /executions/78': {
        status: 200,
        body: execution('FAILED', {
          id: '78',
          kind: 'monitor',
          error: { name: 'DatastoreUnreachable', message: 'datastore 100 is unreachable' },
        }),
      },
    });
    const result = await runCli(['datastore', 'monitor', '100', '--wait'], { env });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('DatastoreUnreachable: datastore 100 is unreachable');
  });
});
