/**
 * Local mode runs the functions' bundles (built with the deployed esbuild options), not their
 * sources: the API's error answers and a step's errorType carry the literal class names the
 * minified code states, the bundles sit in the home, and a second start takes them from the cache.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '#functions/manifest.ts';
import { readLocalCredentials } from '#local/credentials.ts';
import { localDown } from '#local/down.ts';
import { freeStackPorts } from '#local/ports.ts';
import { localUp } from '#local/up.ts';
import { apiCall, type Connection } from './responder.ts';

let home: string;
let conn: Connection;
let lambdaPort: number;

const supervisorLog = async () =>
  (await readFile(join(home, 'logs', 'supervisor.log'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { msg?: string; built?: string[] });

beforeAll(async () => {
  delete process.env.LIFEBOAT_LOCAL_SOURCES;
  home = await mkdtemp(join(tmpdir(), 'lifeboat-bundled-stack-'));
  const ports = await freeStackPorts();
  lambdaPort = ports.lambda;
  await writeFile(join(home, 'config.json'), JSON.stringify({ ports, runner: false }));
  conn = await localUp({ home });
}, 180_000);

afterAll(async () => {
  await localDown({ home });
  await rm(home, { recursive: true, force: true });
}, 60_000);

/** Invoke a function through local mode's Lambda endpoint, as Step Functions and the SDK do. */
async function invoke(name: string, event: unknown) {
  const client = new LambdaClient({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${lambdaPort}`,
    credentials: await readLocalCredentials(home),
  });
  try {
    const out = await client.send(
      new InvokeCommand({ FunctionName: name, Payload: new TextEncoder().encode(JSON.stringify(event)) }),
    );
    return { functionError: out.FunctionError, payload: JSON.parse(new TextDecoder().decode(out.Payload)) };
  } finally {
    client.destroy();
  }
}

describe('local mode runs the bundles', () => {
  it('builds every function into the home, once per content, and says so', async () => {
    const log = await supervisorLog();
    expect(log.some((l) => l.msg === 'bundles built' || l.msg === 'bundles from cache')).toBe(true);
    expect(log.some((l) => l.msg?.includes('LIFEBOAT_LOCAL_SOURCES'))).toBe(false);
    const keys = (await readdir(join(home, 'bundles'))).filter((e) => /^[0-9a-f]{32}$/.test(e));
    expect(keys).toHaveLength(FUNCTIONS.length);
    for (const key of keys) expect(await readdir(join(home, 'bundles', key))).toContain('index.mjs');
  });

  it('answers 404 NotFound and 409 Conflict with the literal names from the bundled Api', async () => {
    expect(await apiCall(conn, 'GET', '/vms/424242')).toEqual({
      status: 404,
      body: { error: 'NotFound', message: expect.stringContaining('424242') },
    });
    const datastore = { name: 'bundled', driver: 'rsync', attributes: { RSYNC_HOST: 'b1' } };
    expect((await apiCall(conn, 'POST', '/datastores', datastore)).status).toBe(201);
    expect(await apiCall(conn, 'POST', '/datastores', datastore)).toEqual({
      status: 409,
      body: { error: 'Conflict', message: expect.stringContaining('bundled') },
    });
  });

  it("reports a bundled step's error with its literal name as errorType", async () => {
    expect(
      await invoke('lifeboat-AdmitBackup', { executionId: 'exec-b', vmId: 424242, datastoreId: 1 }),
    ).toEqual({
      functionError: 'Unhandled',
      payload: { errorType: 'NotFound', errorMessage: 'VM 424242 does not exist' },
    });
    expect((await invoke('lifeboat-AdmitBackup', { executionId: 'exec-b' })).payload.errorType).toBe(
      'ValidationError',
    );
  });

  it('takes the bundles from the cache on the next start', async () => {
    await localDown({ home });
    const before = (await supervisorLog()).length;
    conn = await localUp({ home });
    const started = (await supervisorLog()).slice(before);
    expect(started.filter((l) => l.msg?.startsWith('bundles'))).toEqual([
      expect.objectContaining({ msg: 'bundles from cache' }),
    ]);
    expect((await apiCall(conn, 'GET', '/vms/424242')).body.error).toBe('NotFound');
  });
});
