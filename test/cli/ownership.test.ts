/**
 * `lifeboat vm|datastore|image|backupjob chown|chmod` and `host update --owner` against a fake
 * API: the request each sends, the human and `--json` output, and bad input refused with exit 2
 * and one line before any request.
 */
import { describe, expect, it } from 'vitest';
import { type Reply, useFakeApi } from './fake-api.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const VIEW = { id: 7, owner: 'alice', group: 'web', permissions: 'um-u-----', octal: '640' };
const echo: Reply = (request) => ({ status: 200, body: { ...VIEW, ...(request.body as object) } });

describe('chown and chmod', () => {
  it.each([
    ['vm', '/vms', 'VM'],
    ['datastore', '/datastores', 'Datastore'],
    ['image', '/images', 'Image'],
    ['backupjob', '/jobs', 'Backup job'],
  ])('%s chown USER:GROUP and chmod OCTAL call the ownership routes', async (command, path, label) => {
    const env = await serve({
      [`PUT ${path}/7/owner`]: echo,
      [`PUT ${path}/7/permissions`]: { status: 200, body: VIEW },
    });
    const chown = await runCli([command, 'chown', '7', 'alice:web'], { env });
    expect(chown.exitCode).toBe(0);
    expect(chown.stdout).toBe(`${label} 7: owner alice:web, permissions um-u----- (640)`);
    expect(api.requests[0]?.body).toEqual({ owner: 'alice', group: 'web' });

    const chmod = await runCli([command, 'chmod', '7', '640', '--json'], { env });
    expect(chmod.exitCode).toBe(0);
    expect(JSON.parse(chmod.stdout)).toEqual(VIEW);
    expect(api.requests[1]).toMatchObject({
      method: 'PUT',
      path: `${path}/7/permissions`,
      body: { permissions: '640' },
    });
  });

  it('chown USER sends the owner only, :GROUP the group only', async () => {
    const env = await serve({ 'PUT /vms/3/owner': echo });
    expect((await runCli(['vm', 'chown', '3', 'bob'], { env })).exitCode).toBe(0);
    expect((await runCli(['vm', 'chown', '3', ':db'], { env })).exitCode).toBe(0);
    expect(api.requests.map((r) => r.body)).toEqual([{ owner: 'bob' }, { group: 'db' }]);
  });

  it('a refusal of the API is exit 1 with Forbidden, a missing user exit 2', async () => {
    const env = await serve({
      'PUT /vms/3/owner': {
        status: 403,
        body: { error: 'Forbidden', message: 'only admins may give VM 3 to another user' },
      },
      'PUT /images/3/owner': {
        status: 404,
        body: { error: 'NotFound', message: 'User carol does not exist' },
      },
    });
    const denied = await runCli(['vm', 'chown', '3', 'bob'], { env });
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toBe('lifeboat: Forbidden: only admins may give VM 3 to another user');
    const missing = await runCli(['image', 'chown', '3', 'carol'], { env });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toBe('lifeboat: User carol does not exist');
  });

  it('--help of each object group lists chown and chmod', async () => {
    for (const command of ['vm', 'datastore', 'image', 'backupjob']) {
      const help = await runCli([command, '--help']);
      expect(help.exitCode).toBe(0);
      expect(help.stdout).toMatch(/chown <\w+> <USER\[:GROUP\]>/);
      expect(help.stdout).toMatch(/chmod <\w+> <OCTAL>/);
    }
  });
});

describe('listings show ownership', () => {
  it('vm list and image list end with OWNER, GROUP and octal PERMS; show gives both forms', async () => {
    const owned = { owner: 'alice', group: 'web', permissions: 'um-u-----' };
    const VM = { id: 3, name: 'web-1', hostId: 1, state: 'RUNNING', disks: [], nics: [], ...owned };
    const IMAGE = { id: 9, name: 'web-1-backup', vmId: 3, datastoreId: 100, state: 'READY', ...owned };
    const env = await serve({
      'GET /vms': { status: 200, body: { items: [VM] } },
      'GET /vms/3': { status: 200, body: VM },
      'GET /images': { status: 200, body: { items: [IMAGE] } },
    });
    const vms = (await runCli(['vm', 'list'], { env })).stdout.split('\n');
    expect(vms[0]).toMatch(/^ID\s+NAME\s+HOST\s+STATE.*\s+OWNER\s+GROUP\s+PERMS$/);
    expect(vms[1]).toMatch(/^3\s+web-1\s+1\s+RUNNING.*\s+alice\s+web\s+640$/);
    const images = (await runCli(['image', 'list'], { env })).stdout.split('\n');
    expect(images[0]).toMatch(/\s+OWNER\s+GROUP\s+PERMS$/);
    expect(images[1]).toMatch(/^9\s+web-1-backup\s+3\s+100\s+READY.*\s+alice\s+web\s+640$/);
    expect((await runCli(['vm', 'show', '3'], { env })).stdout).toMatch(
      /^PERMISSIONS:\s+um-u----- \(640\)$/m,
    );
  });
});

describe('host update --owner', () => {
  it.each([
    ['alice:web', { defaultOwner: 'alice', defaultGroup: 'web' }],
    ['alice', { defaultOwner: 'alice', defaultGroup: null }],
    [':web', { defaultGroup: 'web' }],
    ['', { defaultOwner: null, defaultGroup: null }],
  ])('--owner %j sends %j', async (owner, body) => {
    const env = await serve({
      'PATCH /hosts/2': (request) => ({
        status: 200,
        body: { id: 2, name: 'kvm-2', state: 'MONITORED', createdAt: 'x', ...(request.body as object) },
      }),
    });
    const result = await runCli(['host', 'update', '2', '--owner', owner], { env });
    expect(result.exitCode).toBe(0);
    expect(api.requests[0]?.body).toEqual(body);
  });

  it('host show names the default owner; update prints it', async () => {
    const HOST = { id: 2, name: 'kvm-2', cluster: 'default', state: 'MONITORED', createdAt: 'x' };
    const env = await serve({
      'GET /hosts/2': { status: 200, body: { ...HOST, defaultOwner: 'alice', defaultGroup: 'web' } },
      'GET /hosts/3': { status: 200, body: { ...HOST, id: 3 } },
      'PATCH /hosts/2': { status: 200, body: { ...HOST, defaultOwner: 'alice' } },
    });
    expect((await runCli(['host', 'show', '2'], { env })).stdout).toMatch(/^DEFAULT OWNER:\s+alice:web$/m);
    expect((await runCli(['host', 'show', '3'], { env })).stdout).toMatch(/^DEFAULT OWNER:\s+admin$/m);
    const json = await runCli(['host', 'show', '2', '--json'], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({ defaultOwner: 'alice', defaultGroup: 'web' });
    expect((await runCli(['host', 'update', '2', '--owner', 'alice'], { env })).stdout).toMatch(
      /DEFAULT OWNER alice$/,
    );
  });
});

describe('bad input never reaches the API', () => {
  it.each([
    [['vm', 'chown', '3'], /missing required argument 'USER\[:GROUP\]'/],
    [['vm', 'chown', '3', 'alice:-x'], /A group name must be 1 to 64/],
    [['vm', 'chown', '3', 'alice:'], /Expected USER, USER:GROUP or :GROUP/],
    [['vm', 'chown', '3', ':'], /Expected USER, USER:GROUP or :GROUP/],
    [['vm', 'chown', '3', 'a/b'], /A user name must be 1 to 64/],
    [['image', 'chown', '3', 'alice:hosts'], /The group "hosts" is reserved/],
    [['datastore', 'chown', 'x', 'alice'], /Expected a non-negative integer id/],
    [['vm', 'chmod', '3', '800'], /Permissions must be three octal digits/],
    [['backupjob', 'chmod', '3', '64'], /Permissions must be three octal digits/],
    [['vm', 'chmod', '3', 'u+r'], /Permissions must be three octal digits/],
    [['host', 'update', '2', '--owner', 'al ice'], /A user name must be/],
    [['host', 'update', '2', '--owner', 'alice:b:c'], /Expected USER, USER:GROUP or :GROUP/],
  ])('lifeboat %j exits 2 with one line', async (args, message) => {
    const env = await serve({});
    const result = await runCli(args, { env });
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(api.requests).toEqual([]);
  });
});
