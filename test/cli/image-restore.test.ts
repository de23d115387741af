/**
 * `lifeboat image restore` options of issue 6 against a fake API: onto a host (defined, started
 * only with --start), in place with its confirmation, and the API's refusals as one line.
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { execution } from './fixtures.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const QUEUED = { status: 202, body: execution('QUEUED', { kind: 'restore' }) };

describe('image restore into a Ceph pool', () => {
  it('--pool sends the pool (rbd disks as new images of that pool); --datastore is no option', async () => {
    const env = await serve({ 'POST /images/12/restore': QUEUED });
    const result = await runCli(['image', 'restore', '12', '--pool', 'rbd-restore', '--name', 'web2'], {
      env,
    });
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({ name: 'web2', noIp: false, noNic: false, pool: 'rbd-restore' });
    const old = await runCli(['image', 'restore', '12', '--datastore', '3'], { env });
    expect(old.exitCode).toBe(2);
    expect(old.stderr).toMatch(/unknown option '--datastore'/);
    expect(api.requests).toHaveLength(1);
  });

  it('shows the API refusal of a pool the host does not allow as one line', async () => {
    const env = await serve({
      'POST /images/12/restore': {
        status: 403,
        body: {
          error: 'Forbidden',
          message: 'pool: host 2 does not allow restores into pool "x" (RESTORE_POOLS)',
        },
      },
    });
    const result = await runCli(['image', 'restore', '12', '--pool', 'x'], { env });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('pool: host 2 does not allow restores into pool "x" (RESTORE_POOLS)');
  });
});

describe('image restore onto a host and in place', () => {
  it('--host with --start asks for a started VM; --in-place --yes-overwrite sends the confirmation', async () => {
    const env = await serve({ 'POST /images/12/restore': QUEUED });
    const onHost = await runCli(['image', 'restore', '12', '--host', '2', '--start', '--no-nic'], { env });
    expect(onHost.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({ noIp: false, noNic: true, hostId: 2, start: true });
    const inPlace = await runCli(['image', 'restore', '12', '--in-place', '--yes-overwrite'], { env });
    expect(inPlace.exitCode).toBe(0);
    expect(api.requests[1]?.body).toEqual({
      noIp: false,
      noNic: false,
      inPlace: true,
      confirmOverwrite: true,
    });
  });

  it.each([
    [['--in-place'], /--in-place overwrites the VM’s disks: add --yes-overwrite to confirm/],
    [['--yes-overwrite'], /--yes-overwrite goes with --in-place/],
  ])('%j is a usage error (exit 2) that never reaches the API', async (extra, message) => {
    const env = await serve({ 'POST /images/12/restore': QUEUED });
    const result = await runCli(['image', 'restore', '12', ...extra], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(api.requests).toEqual([]);
  });

  it('shows the API refusal of a single-disk VM restore as one line, exit 2', async () => {
    const env = await serve({
      'POST /images/12/restore': {
        status: 400,
        body: {
          error: 'ValidationError',
          message:
            'diskId: cannot restore a VM from a single-disk backup (disk 1 restores a disk image only)',
        },
      },
    });
    const result = await runCli(['image', 'restore', '12', '--disk', '1', '--start'], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim()).toMatch(/cannot restore a VM from a single-disk backup/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('--wait prints the restored files, the defined domain, and notes on stderr', async () => {
    const done = execution('SUCCEEDED', {
      kind: 'restore',
      params: {
        result: {
          disks: [{ id: 0, path: '/vms/web-2/web-2-disk-0.qcow2', size: 5 }],
          templatePath: '/vms/web-2/web-2.xml',
          domain: 'web-2',
          started: true,
          notes: ['PCI hostdev 0000:06:02.0 of the backed-up VM left out'],
        },
      },
    });
    const env = await serve({
      'POST /images/12/restore': QUEUED,
      'GET /executions/17': { status: 200, body: done },
    });
    const result = await runCli(
      ['image', 'restore', '12', '--host', '2', '--start', '--wait', '--no-progress'],
      {
        env,
      },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n').slice(1)).toEqual([
      'disk /vms/web-2/web-2-disk-0.qcow2',
      'template /vms/web-2/web-2.xml',
      'domain web-2 started',
    ]);
    expect(result.stderr).toContain('note: PCI hostdev 0000:06:02.0 of the backed-up VM left out');
  });
});
