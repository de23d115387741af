/**
 * `lifeboat datastore sched add|list|delete DSID --action verify ...` against a fake API: the
 * schedule flags of `vm sched` sent as the API takes them, the list printed with its next runs,
 * and a backup action refused before the API is reached (exit 2).
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const schedule = {
  id: 7,
  target: 'datastore',
  targetId: 100,
  action: 'verify',
  reset: false,
  priority: 0,
  spec: { start: '2026-12-13T02:00:00.000Z', repeat: { kind: 'weekly', days: [0] } },
  nextRunAt: '2026-12-13T02:00:00.000Z',
  runs: 0,
  createdBy: 'admin',
  createdAt: '2026-12-06T20:00:00.000Z',
  description: 'weekly on SUN at 02:00 UTC',
  nextRuns: ['2026-12-13T02:00:00.000Z', '2026-12-20T02:00:00.000Z'],
};

describe('datastore sched', () => {
  it('add sends the action and the schedule flags, and prints the next runs', async () => {
    const env = await serve({ 'POST /datastores/100/schedules': { status: 201, body: schedule } });
    const result = await runCli(
      [
        'datastore',
        'sched',
        'add',
        '100',
        '--action',
        'verify',
        '--time',
        '2026-12-13T02:00:00Z',
        '--repeat',
        'weekly',
        '--end',
        '10',
      ],
      { env },
    );
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({
      action: 'verify',
      time: '2026-12-13T02:00:00Z',
      repeat: 'weekly',
      end: 10,
    });
    expect(result.stdout.split('\n')).toEqual([
      'schedule 7: weekly on SUN at 02:00 UTC',
      'next runs: 2026-12-13T02:00:00.000Z, 2026-12-20T02:00:00.000Z',
    ]);
  });

  it('--repeat cron EXPR and --end DATE are sent as the API takes them; verify is the default action', async () => {
    const env = await serve({ 'POST /datastores/100/schedules': { status: 201, body: schedule } });
    const result = await runCli(
      [
        'datastore',
        'sched',
        'add',
        '100',
        '--time',
        '+60',
        '--repeat',
        'cron',
        '0 2 ? * SUN *',
        '--end',
        '2027-01-01T00:00:00Z',
      ],
      { env },
    );
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({
      action: 'verify',
      time: '+60',
      repeat: 'cron(0 2 ? * SUN *)',
      end: '2027-01-01T00:00:00Z',
    });
  });

  it('list prints the schedules; delete deletes one', async () => {
    const env = await serve({
      'GET /datastores/100/schedules': { status: 200, body: { items: [schedule] } },
      'DELETE /datastores/100/schedules/7': { status: 204 },
    });
    const listed = await runCli(['datastore', 'sched', 'list', '100'], { env });
    expect(listed.exitCode).toBe(0);
    const [header, row] = listed.stdout.split('\n');
    expect(header?.split(/\s{2,}/)).toEqual(['ID', 'ACTION', 'SCHEDULE', 'NEXT', 'RUNS', 'LAST']);
    expect(row).toMatch(
      /^7\s+verify\s+weekly on SUN at 02:00 UTC\s+2026-12-13T02:00:00.000Z 2026-12-20T02:00:00.000Z\s+0/,
    );
    const deleted = await runCli(['datastore', 'sched', 'delete', '100', '7'], { env });
    expect(deleted.exitCode).toBe(0);
    expect(deleted.stdout).toBe('schedule 7 deleted');
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /datastores/100/schedules',
      'DELETE /datastores/100/schedules/7',
    ]);
  });

  it('refuses an action a datastore does not take, and a VM backup flag, before the API (exit 2)', async () => {
    const env = await serve({});
    const backup = await runCli(['datastore', 'sched', 'add', '100', '--action', 'backup', '--time', 'now'], {
      env,
    });
    expect(backup.exitCode).toBe(2);
    expect(backup.stderr).toBe('lifeboat: --action: only verify or drill (got "backup")');
    const datastore = await runCli(['datastore', 'sched', 'add', '100', '-d', '1', '--time', 'now'], { env });
    expect(datastore.exitCode).toBe(2);
    expect(datastore.stderr).toMatch(/unknown option '-d'/);
    expect(api.requests).toEqual([]);
  });

  it('--sample N asks for N images a run, a drill 1 to 20 and a verify 1 to 1000; others are refused (exit 2)', async () => {
    const env = await serve({ 'POST /datastores/100/schedules': { status: 201, body: schedule } });
    const refused = [
      [
        ['--action', 'drill', '--sample', '0'],
        'lifeboat: --sample: a number of images from 1 to 1000 (got "0")',
      ],
      [['--sample', '1001'], 'lifeboat: --sample: a number of images from 1 to 1000 (got "1001")'],
      [
        ['--action', 'drill', '--sample', '21'],
        'lifeboat: --sample: a drill restores 1 to 20 images a run (got "21")',
      ],
    ] as const;
    for (const [flags, message] of refused) {
      const out = await runCli(['datastore', 'sched', 'add', '100', ...flags, '--time', 'now'], { env });
      expect(out.exitCode, flags.join(' ')).toBe(2);
      expect(out.stderr).toBe(message);
    }
    // A backup job's schedule backs up by default: a backup takes no sample.
    const backup = await runCli(['backupjob', 'sched', 'add', '5', '--sample', '2', '--time', 'now'], {
      env,
    });
    expect(backup.exitCode).toBe(2);
    expect(backup.stderr).toBe('lifeboat: --sample: only with --action verify or drill');
    expect(api.requests).toEqual([]);
    const drill = await runCli(
      [
        'datastore',
        'sched',
        'add',
        '100',
        '--action',
        'drill',
        '--sample',
        '3',
        '--time',
        'now',
        '--repeat',
        'weekly',
      ],
      { env },
    );
    expect(drill.exitCode, drill.stderr).toBe(0);
    expect(api.requests[0]?.body).toEqual({ action: 'drill', time: 'now', repeat: 'weekly', sample: 3 });
    const verify = await runCli(['datastore', 'sched', 'add', '100', '--sample', '250', '--time', 'now'], {
      env,
    });
    expect(verify.exitCode, verify.stderr).toBe(0);
    expect(api.requests[1]?.body).toEqual({ action: 'verify', time: 'now', sample: 250 });
  });
});
