/**
 * Restore requests and steps on DynamoDB Local: the API's checks against the image and the VM,
 * Admit's cleaned template and host placement, the in-place lock, and Commit ending the VM's
 * increment chain and unlocking it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { images } from '#functions/repo/images.ts';
import { pendingRequests, requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitRestore } from '#functions/tasks/admit-restore.ts';
import { handler as commitRestore } from '#functions/tasks/commit-restore.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';
import { hostBody } from '../helpers/host-key.ts';

const admin = { token: 'admin-token-restore-steps' };

const TEMPLATE = `<domain type='kvm'>
  <name>vm-a</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/images/a0.qcow2'/><target dev='vda'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/images/a1.raw'/><target dev='vdb'/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/></interface>
  </devices>
</domain>`;

const vmOf = (name: string, state: string, disks: object[]) => ({
  domain: name,
  state,
  disks,
  nics: [],
  template: TEMPLATE.replace('vm-a', name),
});
const fileDisks = [
  { id: 0, target: 'vda', source: '/images/a0.qcow2', format: 'qcow2', size: 1000 },
  { id: 1, target: 'vdb', source: '/images/a1.raw', format: 'raw', size: 1000 },
];

const image = (id: number, vmId: number, diskIds: number[]) => ({
  owner: 'admin',
  group: 'admin',
  permissions: 'um-------',
  id,
  name: `${vmId}-${id}`,
  type: 'BACKUP' as const,
  vmId,
  datastoreId: 1,
  state: 'READY' as const,
  mode: 'FULL' as const,
  source: `snap-${id}`,
  disks: diskIds.map((d) => ({ id: d, size: 10, virtualSize: 1000, format: 'raw', file: `disk.${d}.raw` })),
  template: TEMPLATE,
  createdAt: new Date().toISOString(),
});

useControlPlane({
  name: 'restore-steps',
  env: { RESTORE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Restore' },
  admin,
});
beforeAll(async () => {
  const host = await call('POST', '/hosts', { ...admin, body: hostBody('kvm-1', { emulatorCpus: '2-3' }) });
  expect(host.status).toBe(201);
  const ds = await call('POST', '/datastores', {
    ...admin,
    body: { name: 'repo', driver: 'restic', attributes: { RESTIC_PASSWORD: 'pw' } },
  });
  expect(ds.status).toBe(201);
  const rbd = { id: 0, target: 'vda', source: 'pool/c0', format: 'rbd', size: 1000 };
  const inventory = await call('PUT', '/hosts/1/inventory', {
    ...admin,
    body: {
      vms: [
        vmOf('vm-a', 'POWEROFF', fileDisks),
        vmOf('vm-b', 'RUNNING', fileDisks),
        vmOf('vm-c', 'POWEROFF', [rbd]),
      ],
    },
  });
  expect(inventory.status).toBe(200);
  await images.put(image(1, 1, [0, 1]));
  await images.put(image(2, 2, [0, 1]));
  const rbdTemplate = `<domain><name>vm-c</name><devices><disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name='pool/c0'/><target dev='vda'/></disk></devices></domain>`;
  await images.put({ ...image(3, 3, [0]), template: rbdTemplate });
  await images.put(image(4, 1, [1]));
  await vms.update(1, {
    'backups.BACKUP_CONFIG': { MODE: 'INCREMENT', INCREMENTAL_BACKUP_ID: '9', LAST_INCREMENT_ID: '2' },
  });
}, 120_000);

/** POST the restore, then run Admit on the input the API stored (as the state machine would). */
async function admitted(imageId: number, body: object) {
  const res = await call('POST', `/images/${imageId}/restore`, { ...admin, body });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const input = (await requests.get(res.body.id)).input as { executionId: string; imageId: number };
  return { id: res.body.id as string, input, out: await admitRestore(input as never) };
}

describe('restore into a Ceph pool', () => {
  it('only into a pool an admin allowed on that host (RESTORE_POOLS), checked by the API and again by Admit', async () => {
    const refused = await call('POST', '/images/3/restore', {
      ...admin,
      body: { hostId: 1, pool: 'restored' },
    });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toBe(
      'pool: host 1 does not allow restores into pool "restored" (RESTORE_POOLS)',
    );
    const patched = await call('PATCH', '/hosts/1', {
      ...admin,
      body: { restorePools: ['restored', 'restored'] },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.restorePools).toEqual(['restored']);
    const { out } = await admitted(3, { hostId: 1, pool: 'restored', name: 'c-copy' });
    expect(out.task).toMatchObject({
      pool: 'restored',
      name: 'c-copy',
      template: null,
      define: null,
      inPlace: null,
    });
    // Taken back between the request and Admit: Admit refuses.
    const res = await call('POST', '/images/3/restore', { ...admin, body: { hostId: 1, pool: 'restored' } });
    expect(res.status).toBe(202);
    const input = (await requests.get(res.body.id)).input as { executionId: string };
    expect((await call('PATCH', '/hosts/1', { ...admin, body: { restorePools: [] } })).status).toBe(200);
    await expect(admitRestore(input as never)).rejects.toMatchObject({
      name: 'Forbidden',
      message: 'pool: host 1 does not allow restores into pool "restored" (RESTORE_POOLS)',
    });
    expect((await call('GET', '/hosts/1', admin)).body.restorePools).toBeUndefined();
  });
});

describe('restore onto a host', () => {
  it('Admit cleans the template and asks the host to define (and start) it with its EMULATOR_CPUS', async () => {
    const { out } = await admitted(1, { hostId: 1, noIp: true, name: 'copy', start: true });
    expect(out.task).toMatchObject({
      name: 'copy',
      define: { start: true, emulatorCpus: '2-3' },
      inPlace: null,
    });
    expect(out.task.template).toContain('<name>copy</name>');
    expect(out.task.template).not.toContain('<uuid>');
    expect(out.task.template).not.toContain('52:54:00:aa:bb:cc');
    expect(out.task.template).toContain('<source network="default"/>');
  });

  it('names a new VM <vmid>-<imageid> by default and writes files only without a host', async () => {
    const { out } = await admitted(1, {});
    // Relative: the host's runner puts it under its first restore root.
    expect(out.task).toMatchObject({ name: '1-1', define: null, target: '1-1', confine: false });
  });

  it('refuses a VM from a backup that lacks some of its disks, but restores that disk alone', async () => {
    const res = await call('POST', '/images/4/restore', { ...admin, body: { hostId: 1 } });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(
      /^image 4: cannot restore a VM from a single-disk backup \(it lacks disk 0\)/,
    );
    const { out } = await admitted(4, { diskId: 1, hostId: 1 });
    expect(out.task).toMatchObject({ disks: [{ id: 1, file: 'disk.1.raw' }], template: null, define: null });
  });

  it('refuses to define a VM from an image that holds no template', async () => {
    await images.put({ ...image(5, 1, [0, 1]), template: '' });
    await expect(admitted(5, { hostId: 1 })).rejects.toThrow(/image 5 holds no VM template/);
  });
});

describe('in-place restore', () => {
  it('refuses a running VM', async () => {
    const running = await call('POST', '/images/2/restore', {
      ...admin,
      body: { inPlace: true, confirmOverwrite: true },
    });
    expect(running.status).toBe(409);
    expect(running.body.message).toBe('VM 2 is RUNNING: an in-place restore needs it POWEROFF');
    expect((await vms.get(2)).lock).toBeUndefined();
  });

  it('an rbd disk: the task names its image, the runner writes it over through the rbd driver', async () => {
    const { input, out } = await admitted(3, { inPlace: true, confirmOverwrite: true });
    expect(out.task).toMatchObject({
      template: null,
      pool: null,
      inPlace: { domain: 'vm-c', start: false, disks: [{ id: 0, source: 'pool/c0', format: 'rbd' }] },
    });
    expect((await vms.get(3)).lock).toBe(input.executionId);
    const host = { disks: [{ id: 0, path: 'pool/c0', size: 10 }], templatePath: null, durationMs: 1 };
    await commitRestore({ ...input, admit: out, host });
    expect((await vms.get(3)).lock).toBeUndefined();
  });

  it('takes the VM lock, names its files; Commit ends its increment chain and unlocks it', async () => {
    const { id, input, out } = await admitted(1, { inPlace: true, confirmOverwrite: true });
    expect(out.task).toMatchObject({
      template: null,
      define: null,
      inPlace: {
        domain: 'vm-a',
        start: false,
        disks: [
          { id: 0, source: '/images/a0.qcow2', format: 'qcow2' },
          { id: 1, source: '/images/a1.raw', format: 'raw' },
        ],
      },
    });
    expect((await vms.get(1)).lock).toBe(id);
    // A retried Admit keeps the lock; anyone else is refused.
    await admitRestore(input as never);
    const other = await call('POST', '/images/1/restore', {
      ...admin,
      body: { inPlace: true, confirmOverwrite: true },
    });
    expect(other.status).toBe(409);
    expect(other.body.message).toBe(`VM 1 is locked by execution ${id}`);

    const host = {
      disks: [{ id: 0, path: '/images/a0.qcow2', size: 10 }],
      templatePath: null,
      durationMs: 1,
    };
    await commitRestore({ ...input, admit: out, host });
    await commitRestore({ ...input, admit: out, host }); // a retry changes nothing
    const vm = await vms.get(1);
    expect(vm.lock).toBeUndefined();
    expect(vm.backups.BACKUP_CONFIG).toEqual({ MODE: 'INCREMENT' });
  });
});

describe('who may restore where', () => {
  const carol = { token: 'carol-token-restore-steps' };

  it('a user may not name a host: 403 and nothing queued', async () => {
    await seedUser('carol', carol.token, 'user', 'users');
    await images.put({ ...image(5, 2, [0, 1]), owner: 'carol', group: 'users' });
    const before = (await pendingRequests()).length;
    for (const body of [{ hostId: 1 }, { hostId: 1, targetDir: 'mine' }, { hostId: 1, diskId: 0 }]) {
      const res = await call('POST', '/images/5/restore', { ...carol, body });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: 'Forbidden', message: 'only admins may name a host' });
    }
    expect((await pendingRequests()).length).toBe(before);
  });

  it("a user's restore is confined (relative folder accepted), an admin's absolute one is not", async () => {
    const res = await call('POST', '/images/5/restore', { ...carol, body: { targetDir: 'mine/copy' } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const input = (await requests.get(res.body.id)).input as { options: { confine: boolean } };
    expect(input.options.confine).toBe(true);
    const out = await admitRestore(input as never);
    expect(out.task).toMatchObject({ target: 'mine/copy', confine: true, define: null });
    // An absolute folder is the runner's to judge against its roots: queued, still confined.
    const abs = await call('POST', '/images/5/restore', { ...carol, body: { targetDir: '/etc/cron.d' } });
    expect(abs.status).toBe(202);
    const absOut = await admitRestore((await requests.get(abs.body.id)).input as never);
    expect(absOut.task).toMatchObject({ target: '/etc/cron.d', confine: true });

    const { out: adminOut } = await admitted(5, { targetDir: '/srv/vms/copy' });
    expect(adminOut.task).toMatchObject({ target: '/srv/vms/copy', confine: false });
  });

  it('refuses .., a leading - and control characters in targetDir, for everyone (400)', async () => {
    for (const [who, targetDir, message] of [
      [carol, '../x', 'targetDir: must not contain ..'],
      [admin, '/srv/../etc', 'targetDir: must not contain ..'],
      [admin, '-rf', 'targetDir: must not start with -'],
      [carol, 'a\tb', 'targetDir: must not hold control characters'],
    ] as const) {
      const res = await call('POST', '/images/5/restore', { ...who, body: { targetDir } });
      expect(res.status).toBe(400);
      expect(res.body.message).toBe(message);
    }
  });
});
