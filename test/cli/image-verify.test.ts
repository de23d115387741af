/**
 * `lifeboat image verify IMAGEID [--host H] [--wait]` against a fake API: one execution per
 * stored backup, followed to its end with --wait; exit 1 naming the failure when one FAILED.
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { execution } from './fixtures.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const verify = (id: string, state: 'QUEUED' | 'SUCCEEDED' | 'FAILED', extra = {}) =>
  execution(state, {
    id,
    kind: 'verify',
    imageId: 12,
    phase: state === 'QUEUED' ? 'queued' : 'done',
    ...extra,
  });
const QUEUED = {
  status: 202,
  body: { imageId: 12, executions: [verify('21', 'QUEUED'), verify('22', 'QUEUED')] },
};
const image = (extra: object) => ({
  status: 200,
  body: { id: 12, name: 'x', type: 'BACKUP', state: 'READY', mode: 'INCREMENT', ...extra },
});

describe('image verify', () => {
  it('queues one verification per stored backup and says so', async () => {
    const env = await serve({ 'POST /images/12/verify': QUEUED });
    const result = await runCli(['image', 'verify', '12', '--host', '2'], { env });
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({ hostId: 2 });
    expect(result.stdout.split('\n')).toEqual([
      'execution 21 QUEUED (verify: VM 3, datastore 100, image 12)',
      'execution 22 QUEUED (verify: VM 3, datastore 100, image 12)',
    ]);
  });

  it('--wait follows each to its end and prints the image state; exit 0 when all passed', async () => {
    const env = await serve({
      'POST /images/12/verify': QUEUED,
      'GET /executions/21': { status: 200, body: verify('21', 'SUCCEEDED') },
      'GET /executions/22': { status: 200, body: verify('22', 'SUCCEEDED') },
      'GET /images/12': image({ verifyState: 'OK', verifiedAt: '2026-12-06T17:00:00.000Z' }),
    });
    const result = await runCli(['image', 'verify', '12', '--wait', '--no-progress'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n').at(-1)).toBe('image 12 OK at 2026-12-06T17:00:00.000Z');
  });

  it('--wait exits 1 naming the file when a point FAILED', async () => {
    const error = {
      name: 'BackupVerifyFailed',
      message: 'datastore 100: disk.0.inc1.qcow2 of backup b2 reads back with sha256 00',
    };
    const env = await serve({
      'POST /images/12/verify': QUEUED,
      'GET /executions/21': { status: 200, body: verify('21', 'SUCCEEDED') },
      'GET /executions/22': { status: 200, body: verify('22', 'FAILED', { error }) },
      'GET /images/12': image({ verifyState: 'FAILED', verifiedAt: '2026-12-06T17:00:00.000Z' }),
    });
    const result = await runCli(['image', 'verify', '12', '--wait', '--no-progress'], { env });
    expect(result.exitCode).toBe(1);
    expect(result.stdout.split('\n').at(-1)).toBe('image 12 FAILED at 2026-12-06T17:00:00.000Z');
    expect(result.stderr.split('\n').at(-1)).toBe(
      'lifeboat: execution 22 FAILED: BackupVerifyFailed: datastore 100: disk.0.inc1.qcow2 of backup b2 reads back with sha256 00',
    );
  });
});
