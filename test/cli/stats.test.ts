/**
 * `lifeboat stats` against a fake API: columns by default, the API's document with `--json`,
 * bad input refused before any request (exit 2, one stderr line).
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const STATS = {
  at: '2026-12-06T12:00:00.000Z',
  backups: {
    '24h': { succeeded: 2, failed: 1, bytes: 3 * 1024 * 1024, medianSeconds: 20 },
    '7d': { succeeded: 9, failed: 1, bytes: 2 * 1024 ** 3, medianSeconds: 31.5 },
  },
  datastores: [
    {
      id: 100,
      name: 'restic-a',
      totalBytes: 10 * 1024 ** 3,
      freeBytes: 4 * 1024 ** 3,
      usedBytes: 6 * 1024 ** 3,
      monitoredAt: '2026-12-06T11:50:00.000Z',
    },
    { id: 101, name: 'rsync-b' },
  ],
  missedBackups: [
    {
      vmId: 7,
      scheduleId: 3,
      periodSeconds: 86400,
      lastSuccessAt: '2026-12-03T02:00:00.000Z',
      missedSince: '2026-12-05T02:00:00.000Z',
    },
    { vmId: 8, scheduleId: 4, periodSeconds: 3600, missedSince: '2026-12-06T10:00:00.000Z' },
  ],
  verifyFailures: 1,
};

describe('lifeboat stats', () => {
  it('prints the figures as columns', async () => {
    const env = await serve({ 'GET /stats': { status: 200, body: STATS } });
    const result = await runCli(['stats'], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      'BACKUPS   SUCCEEDED  FAILED  BYTES    MEDIAN',
      'last 24h  2          1       3.0 MiB  20 s',
      'last 7d   9          1       2.0 GiB  31.5 s',
      '',
      'DATASTORE  NAME      TOTAL     FREE     USED     MEASURED',
      '100        restic-a  10.0 GiB  4.0 GiB  6.0 GiB  2026-12-06T11:50:00.000Z',
      '101        rsync-b   -         -        -        -',
      '',
      'MISSED VM  SCHEDULE  PERIOD   LAST SUCCESS              MISSED SINCE',
      '7          3         86400 s  2026-12-03T02:00:00.000Z  2026-12-05T02:00:00.000Z',
      '8          4         3600 s   never                     2026-12-06T10:00:00.000Z',
      '',
      'verify failures: 1',
    ]);
    expect(api.requests.map((r) => r.query)).toEqual([{}]);
  });

  it('--json prints the one document the API answered', async () => {
    const env = await serve({ 'GET /stats': { status: 200, body: STATS } });
    const result = await runCli(['stats', '--json'], { env });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(STATS);
  });

  it.each([[['stats', 'now']], [['stats', '--since', '1d']]])(
    'refuses %j before any request (exit 2, one line)',
    async (args) => {
      const env = await serve({ 'GET /stats': { status: 200, body: STATS } });
      const result = await runCli(args, { env });
      expect(result.exitCode).toBe(2);
      expect(result.stderr.split('\n')).toHaveLength(1);
      expect(api.requests).toEqual([]);
    },
  );
});
