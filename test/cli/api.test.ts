/**
 * The CLI against a fake API: what it sends (paths, bodies, token) and what it prints
 * (`--json` shapes, tables), how API errors map to exit codes, and where it finds the API.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { DATASTORE, execution, HOST, IMAGE, LEAKY_DATASTORE, VM } from './fixtures.ts';
import { runCli, tempHome } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

describe('--json output', () => {
  it('list commands print exactly the array of items', async () => {
    const env = await serve({
      'GET /hosts': { status: 200, body: { items: [HOST] } },
      'GET /vms': { status: 200, body: { items: [VM] } },
      'GET /images': { status: 200, body: { items: [IMAGE] } },
      'GET /executions': { status: 200, body: { items: [execution('RUNNING')] } },
    });
    for (const [noun, item] of [
      ['host', HOST],
      ['vm', VM],
      ['image', IMAGE],
      ['execution', execution('RUNNING')],
    ] as const) {
      const result = await runCli([noun, 'list', '--json'], { env });
      expect(result.exitCode).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual([item]);
    }
  });

  it('show prints the object, and sends the bearer token', async () => {
    const env = await serve({ 'GET /vms/3': { status: 200, body: VM } });
    const result = await runCli(['--json', 'vm', 'show', '3'], { env });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(VM);
    expect(api.requests[0]?.headers.authorization).toBe('Bearer tok-123');
  });

  it('vm list --host and execution list --vm --state filter through query parameters', async () => {
    const env = await serve({
      'GET /vms': { status: 200, body: { items: [] } },
      'GET /executions': { status: 200, body: { items: [] } },
    });
    await runCli(['vm', 'list', '--host', '1'], { env });
    await runCli(['execution', 'list', '--vm', '3', '--state', 'FAILED'], { env });
    expect(api.requests.map((request) => request.query)).toEqual([
      { hostId: '1' },
      { vmId: '3', state: 'FAILED' },
    ]);
  });

  it('image list passes --vm and --datastore as query parameters', async () => {
    const env = await serve({ 'GET /images': { status: 200, body: { items: [] } } });
    const result = await runCli(['image', 'list', '--vm', '3', '--datastore', '100', '--json'], { env });
    expect(JSON.parse(result.stdout)).toEqual([]);
    expect(api.requests[0]?.query).toEqual({ vmId: '3', datastoreId: '100' });
  });
});

describe('human output', () => {
  it('vm list is a table with a header and one row per VM', async () => {
    const env = await serve({ 'GET /vms': { status: 200, body: { items: [VM] } } });
    const result = await runCli(['vm', 'list'], { env });
    const lines = result.stdout.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^ID\s+NAME\s+HOST\s+STATE/);
    expect(lines[1]).toMatch(/^3\s+web-1\s+1\s+RUNNING/);
  });

  it('vm show includes disks and BACKUP_CONFIG', async () => {
    const env = await serve({ 'GET /vms/3': { status: 200, body: VM } });
    const result = await runCli(['vm', 'show', '3'], { env });
    expect(result.stdout).toMatch(/^STATE:\s+RUNNING$/m);
    expect(result.stdout).toMatch(/^0\s+vda\s+qcow2\s+10\.0 GiB/m);
    expect(result.stdout).toMatch(/^ {2}KEEP_LAST=3$/m);
  });
});

describe('commands send what the contract says', () => {
  it('datastore create posts name, driver and attributes', async () => {
    const env = await serve({ 'POST /datastores': { status: 201, body: DATASTORE } });
    const result = await runCli(
      [
        'datastore',
        'create',
        '--name',
        'ds1',
        '--driver',
        'restic',
        '--attr',
        'RESTIC_PASSWORD=p=w',
        '--attr',
        'BASE_PATH=/srv/backup',
        '--json',
      ],
      { env },
    );
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]).toMatchObject({
      method: 'POST',
      path: '/datastores',
      body: {
        name: 'ds1',
        driver: 'restic',
        attributes: { RESTIC_PASSWORD: 'p=w', BASE_PATH: '/srv/backup' },
      },
    });
    expect(JSON.parse(result.stdout)).toMatchObject({ id: 100, name: 'ds1' });
    expect(result.stdout + result.stderr).not.toContain('p=w');
  });

  it('datastore update patches the attributes', async () => {
    const env = await serve({ 'PATCH /datastores/100': { status: 200, body: DATASTORE } });
    const result = await runCli(['datastore', 'update', '100', '--attr', 'RESTIC_COMPRESSION=max'], { env });
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({ attributes: { RESTIC_COMPRESSION: 'max' } });
  });

  it('vm backup posts datastoreId and reset, and prints the queued execution', async () => {
    const env = await serve({ 'POST /vms/3/backup': { status: 202, body: execution('QUEUED') } });
    const result = await runCli(['vm', 'backup', '3', '-d', '100', '--reset', '--json'], { env });
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({ datastoreId: 100, reset: true });
    expect(JSON.parse(result.stdout)).toMatchObject({ id: '17', state: 'QUEUED', kind: 'backup' });
  });

  it('vm backupconfig with pairs replaces BACKUP_CONFIG; without, shows it with defaults', async () => {
    const env = await serve({
      'PUT /vms/3/backup-config': (request) => {
        const { pairs } = request.body as { pairs: Record<string, string> };
        return { status: 200, body: { vmId: 3, config: pairs, effective: { ...pairs, MODE: 'FULL' } } };
      },
      'GET /vms/3/backup-config': {
        status: 200,
        body: { vmId: 3, config: { KEEP_LAST: '3' }, effective: { KEEP_LAST: '3', FS_FREEZE: 'NONE' } },
      },
    });
    const set = await runCli(['vm', 'backupconfig', '3', 'KEEP_LAST=5', 'FS_FREEZE=AGENT', '--json'], {
      env,
    });
    expect(set.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({ pairs: { KEEP_LAST: '5', FS_FREEZE: 'AGENT' }, append: false });
    expect(JSON.parse(set.stdout)).toMatchObject({ vmId: 3, config: { KEEP_LAST: '5', FS_FREEZE: 'AGENT' } });
    const show = await runCli(['vm', 'backupconfig', '3'], { env });
    expect(api.requests.at(-1)?.method).toBe('GET');
    expect(show.stdout).toBe('KEEP_LAST=3\nFS_FREEZE=NONE (default)');
  });

  it('image restore maps its options to the restore body', async () => {
    const env = await serve({
      'POST /images/12/restore': { status: 202, body: execution('QUEUED', { kind: 'restore' }) },
    });
    const result = await runCli(
      [
        'image',
        'restore',
        '12',
        '--name',
        'web-2',
        '--no-ip',
        '--increment',
        '2',
        '--disk',
        '0',
        '--host',
        '1',
        '--to',
        '/restore',
      ],
      { env },
    );
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual({
      name: 'web-2',
      noIp: true,
      noNic: false,
      incrementId: 2,
      diskId: 0,
      hostId: 1,
      targetDir: '/restore',
    });
    expect(result.stdout).toMatch(/^execution 17 QUEUED/);
  });

  it('image download sends a relative --to as given (the host takes it under its restore root)', async () => {
    const env = await serve({
      'POST /downloads': { status: 202, body: execution('QUEUED', { kind: 'download' }) },
      'GET /executions/17': { status: 200, body: execution('SUCCEEDED', { kind: 'download' }) },
    });
    const url = 'restic://1/snap/disk.0.raw';
    const relative = await runCli(['image', 'download', url, '--to', 'exports/disk.raw'], { env });
    expect(relative.exitCode).toBe(0);
    const absolute = await runCli(['image', 'download', url, '--to', '/tmp/disk.raw', '--host', '2'], {
      env,
    });
    expect(absolute.exitCode).toBe(0);
    expect(api.requests.filter((r) => r.method === 'POST').map((r) => r.body)).toEqual([
      { url, toPath: 'exports/disk.raw' },
      { url, toPath: '/tmp/disk.raw', hostId: 2 },
    ]);
  });

  it('delete prints {id, deleted} with --json', async () => {
    const env = await serve({ 'DELETE /images/12': { status: 204 } });
    const result = await runCli(['image', 'delete', '12', '--json'], { env });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ id: 12, deleted: true });
  });
});

describe('secrets', () => {
  it('datastore show masks secret-looking attributes even if the API leaked them', async () => {
    const env = await serve({ 'GET /datastores/100': { status: 200, body: LEAKY_DATASTORE } });
    const human = await runCli(['datastore', 'show', '100'], { env });
    const json = await runCli(['datastore', 'show', '100', '--json'], { env });
    for (const result of [human, json]) {
      expect(result.exitCode).toBe(0);
      expect(result.stdout).not.toContain('hunter2-secret');
      expect(result.stdout).not.toContain('BEGIN-KEY');
      expect(result.stdout).toContain('/srv/backup');
    }
    expect(JSON.parse(json.stdout).attributes.RESTIC_PASSWORD).toBe('********');
  });

  it('datastore show names secret attributes the API kept', async () => {
    const env = await serve({ 'GET /datastores/100': { status: 200, body: DATASTORE } });
    const result = await runCli(['datastore', 'show', '100'], { env });
    expect(result.stdout).toMatch(/^ {2}RESTIC_PASSWORD=\*+ \(secret\)$/m);
  });

  it('never prints the token, even when the API rejects it', async () => {
    const env = await serve({
      'GET /hosts': { status: 401, body: { error: 'Unauthorized', message: 'bad token' } },
    });
    const result = await runCli(['host', 'list'], { env });
    expect(result.stdout + result.stderr).not.toContain('tok-123');
  });
});

describe('API errors and exit codes', () => {
  it('a 404 is one line with the API message and exit 2', async () => {
    const env = await serve({
      'GET /vms/7': { status: 404, body: { error: 'NotFound', message: 'VM 7 does not exist' } },
    });
    const result = await runCli(['vm', 'show', '7'], { env });
    expect(result).toEqual({ exitCode: 2, stdout: '', stderr: 'lifeboat: VM 7 does not exist' });
  });

  it('a 409 is exit 2 too', async () => {
    const env = await serve({
      'DELETE /datastores/100': {
        status: 409,
        body: { error: 'Conflict', message: 'datastore 100 holds images' },
      },
    });
    const result = await runCli(['datastore', 'delete', '100'], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe('lifeboat: datastore 100 holds images');
  });

  it('a 500 is exit 1', async () => {
    const env = await serve({
      'GET /hosts': { status: 500, body: { error: 'InternalError', message: 'boom' } },
    });
    const result = await runCli(['host', 'list'], { env });
    expect(result).toEqual({ exitCode: 1, stdout: '', stderr: 'lifeboat: boom' });
  });

  it('an unreachable API is exit 1 with a hint', async () => {
    const result = await runCli(['--endpoint', 'http://127.0.0.1:9', 'vm', 'list']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      'lifeboat: cannot reach the Lifeboat API at http://127.0.0.1:9: is it running? try `lifeboat local up`',
    );
  });
});

describe('finding the API', () => {
  it('reads endpoint.json from LIFEBOAT_HOME when nothing else is set', async () => {
    const { LIFEBOAT_ENDPOINT: endpoint } = await serve({
      'GET /hosts': { status: 200, body: { items: [HOST] } },
    });
    const home = tempHome();
    writeFileSync(join(home, 'endpoint.json'), JSON.stringify({ endpoint, token: 'file-token' }), {
      mode: 0o600,
    });
    const result = await runCli(['host', 'list', '--json'], { env: { LIFEBOAT_HOME: home } });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([HOST]);
    expect(api.requests[0]?.headers.authorization).toBe('Bearer file-token');
  });

  it('--endpoint and --token win over the environment and the file', async () => {
    const { LIFEBOAT_ENDPOINT: endpoint } = await serve({
      'GET /hosts': { status: 200, body: { items: [] } },
    });
    const home = tempHome();
    mkdirSync(home, { recursive: true });
    writeFileSync(
      join(home, 'endpoint.json'),
      JSON.stringify({ endpoint: 'http://127.0.0.1:9', token: 'x' }),
    );
    const result = await runCli(['--endpoint', endpoint, '--token', 'flag-token', 'host', 'list'], {
      env: { LIFEBOAT_HOME: home, LIFEBOAT_ENDPOINT: 'http://127.0.0.1:9', LIFEBOAT_TOKEN: 'env-token' },
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('no hosts');
    expect(api.requests[0]?.headers.authorization).toBe('Bearer flag-token');
  });
});

describe('host enroll', () => {
  const enrollment = { name: 'kvm-7', token: 'lbe_abc', expiresAt: '2030-01-01T00:00:00.000Z' };

  it('asks the API for a token and prints only the token on stdout', async () => {
    const env = await serve({ 'POST /hosts/enroll': { status: 201, body: enrollment } });
    const result = await runCli(['host', 'enroll', 'kvm-7', '--expires', '600'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('lbe_abc');
    expect(result.stderr).toMatch(/^enrollment token for host "kvm-7", valid until 2030-01-01T00:00:00.000Z/);
    expect(result.stderr).toMatch(/LIFEBOAT_ENROLL_TOKEN/);
    expect(api.requests[0]?.body).toEqual({ name: 'kvm-7', expiresInSeconds: 600 });
  });

  it('--json prints name, token and expiresAt; without --expires the API picks the default', async () => {
    const env = await serve({ 'POST /hosts/enroll': { status: 201, body: enrollment } });
    const result = await runCli(['--json', 'host', 'enroll', 'kvm-7'], { env });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(enrollment);
    expect(result.stderr).toBe('');
    expect(api.requests[0]?.body).toEqual({ name: 'kvm-7' });
  });

  it("a refusal prints nothing on stdout and the API's message on stderr", async () => {
    const env = await serve({
      'POST /hosts/enroll': {
        status: 403,
        body: { error: 'Forbidden', message: 'only admins may enroll hosts' },
      },
    });
    const result = await runCli(['host', 'enroll', 'kvm-7'], { env });
    expect(result.stdout).toBe('');
    // CLI.md: a refusal for lack of rights is exit 1 with `Forbidden: ...` on stderr.
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trim()).toBe('lifeboat: Forbidden: only admins may enroll hosts');
  });
});
