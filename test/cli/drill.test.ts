/**
 * `lifeboat image verify IMAGEID --restore [--latest-only] [--wait]` and `lifeboat drill list |
 * show` against a fake API: the request body, the report printed (and in --json), exit 1 naming
 * the disk when the drill FAILED, exit 2 for --latest-only without --restore.
 */
import { describe, expect, it } from 'vitest';
import type { Drill } from '#core/model.ts';
import { useFakeApi } from './fake-api.ts';
import { execution } from './fixtures.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const report = (extra: Partial<Drill> = {}): Drill => ({
  id: 5,
  imageId: 12,
  vmId: 3,
  datastoreId: 100,
  hostId: 1,
  executionId: '31',
  latestOnly: false,
  result: 'RUNNING',
  requestedBy: 'admin',
  createdAt: '2026-12-06T17:00:00.000Z',
  ...extra,
});
const run = (state: 'QUEUED' | 'SUCCEEDED' | 'FAILED', extra = {}) =>
  execution(state, { id: '31', kind: 'drill', imageId: 12, ...extra });
const QUEUED = { status: 202, body: { imageId: 12, drill: report(), executions: [run('QUEUED')] } };
const image = (verifyState: string) => ({
  status: 200,
  body: { id: 12, name: 'x', type: 'BACKUP', state: 'READY', mode: 'FULL', verifyState },
});

describe('image verify --restore', () => {
  it('asks for a drill (latest point only with --latest-only) and names its report', async () => {
    const env = await serve({ 'POST /images/12/verify': QUEUED });
    const result = await runCli(['image', 'verify', '12', '--restore', '--latest-only'], { env });
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({ restore: true, latestOnly: true });
    expect(result.stdout.split('\n')[0]).toBe('drill 5 RUNNING');
  });

  it('--latest-only without --restore is a usage error, and nothing is asked', async () => {
    const env = await serve({ 'POST /images/12/verify': QUEUED });
    const result = await runCli(['image', 'verify', '12', '--latest-only'], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--latest-only needs --restore');
    expect(api.requests).toEqual([]);
  });

  it('--wait --json: the image, the report and the execution; exit 1 naming the disk when it FAILED', async () => {
    const error = {
      name: 'BackupVerifyFailed',
      message: 'datastore 100: disk 0: disk.0.raw of backup b1 restored with sha256 00',
    };
    const failed = report({ result: 'FAILED', error: `${error.name}: ${error.message}` });
    const env = await serve({
      'POST /images/12/verify': QUEUED,
      'GET /executions/31': { status: 200, body: run('FAILED', { error }) },
      'GET /images/12': image('FAILED'),
      'GET /drills/5': { status: 200, body: failed },
    });
    const result = await runCli(['image', 'verify', '12', '--restore', '--wait', '--json'], { env });
    expect(result.exitCode).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ drill: failed, image: { verifyState: 'FAILED' } });
    expect(result.stderr).toContain('disk 0: disk.0.raw');
  });
});

describe('drill list | show', () => {
  it('lists reports with their figures and shows one', async () => {
    const ok = report({ result: 'OK', points: 2, bytes: 3 * 1024 * 1024, seconds: 4.2 });
    const env = await serve({
      'GET /drills': { status: 200, body: { items: [ok] } },
      'GET /drills/5': { status: 200, body: ok },
    });
    const list = await runCli(['drill', 'list'], { env });
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+IMAGE\s+VM\s+HOST\s+RESULT\s+POINTS\s+BYTES\s+SECONDS/);
    expect(list.stdout).toMatch(/\n5\s+12\s+3\s+1\s+OK\s+2\s+3\.0 MiB\s+4\.2/);
    const json = await runCli(['drill', 'list', '--json'], { env });
    expect(JSON.parse(json.stdout)).toEqual([ok]);
    const show = await runCli(['drill', 'show', '5'], { env });
    expect(show.stdout).toMatch(/RESULT:\s+OK/);
    expect(show.stdout).toMatch(/POINTS:\s+2/);
    expect(JSON.parse((await runCli(['drill', 'show', '5', '--json'], { env })).stdout)).toEqual(ok);
  });
});
