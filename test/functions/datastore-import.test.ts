/**
 * `lifeboat datastore import` on DynamoDB Local (issue 14, a catalog that can be rebuilt): the
 * route (admin only, 404 for an unknown datastore), the catalog task it admits, and what the
 * Commit writes from a catalog answer: FULL and increment-chain images with their sizes,
 * checksums and template, owned by the VM's owner when the VM is known and by the admin
 * otherwise, an untrusted entry skipped, the id counters raised past the datastore's ids, and a
 * second import that changes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { allocateId } from '#functions/repo/counters.ts';
import { executions } from '#functions/repo/executions.ts';
import { listImages } from '#functions/repo/images.ts';
import { requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitMaintenance } from '#functions/tasks/admit-maintenance.ts';
import { handler as commitMaintenance } from '#functions/tasks/commit-maintenance.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-h14import' };
const bob = { token: 'bob-token-h14import' };
const SUM = 'c'.repeat(64);
const KNOWN_UUID = '1c4e0000-0000-4000-8000-0000000014aa';
const KNOWN_TEMPLATE = `<domain><name>h14import-known</name><uuid>${KNOWN_UUID}</uuid></domain>`;
/** The same VM id in the datastore, but another domain: never owned through the id. */
const STRANGER_TEMPLATE =
  '<domain><name>h14import-stranger</name><uuid>1C4E0000000040008000000000001400</uuid></domain>';
const LOST_TEMPLATE = '<domain><name>h14import-lost</name></domain>';

useControlPlane({
  name: 'h14import',
  env: { MAINTENANCE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Maintenance' },
  admin,
  hosts: ['kvm-h14import'],
});

let knownVmId: number;
let datastoreId: number;

beforeAll(async () => {
  await seedUser('bob', bob.token, 'user');
  const ds = await call('POST', '/datastores', {
    ...admin,
    body: { name: 'h14import-ds', driver: 'restic', attributes: { RESTIC_PASSWORD: 'pw' } },
  });
  expect(ds.status).toBe(201);
  datastoreId = ds.body.id;
  const inventory = await call('PUT', '/hosts/1/inventory', {
    ...admin,
    body: {
      vms: [
        {
          domain: 'h14import-known',
          uuid: KNOWN_UUID,
          state: 'RUNNING',
          disks: [
            { id: 0, target: 'vda', source: '/images/h14import.qcow2', format: 'qcow2', size: 1 << 20 },
          ],
          nics: [],
          template: KNOWN_TEMPLATE,
        },
      ],
    },
  });
  expect(inventory.status).toBe(200);
  const [vm] = (await vms.list()).filter((v) => v.name === 'h14import-known');
  knownVmId = vm?.id as number;
  await vms.update(knownVmId, { owner: 'bob', group: 'users', permissions: 'um-u-----' });
});

/** A catalog entry as a runner answers it (template: an index into `templates`). */
const entry = (vmId: number, imageId: number | null, backupId: string, files: string[], minute: number) => ({
  vmId,
  backupId,
  imageId,
  jobId: null,
  time: `2026-12-01T10:${String(minute).padStart(2, '0')}:00.123456789Z`,
  files: files.map((name, i) => ({ name, size: 1000 * (i + 1) + minute, sha256: i === 0 ? SUM : null })),
  template: vmId === 900 ? 1 : 0,
});

const CATALOG = {
  templates: [KNOWN_TEMPLATE, LOST_TEMPLATE, STRANGER_TEMPLATE],
  backups: [
    () => entry(knownVmId, 7, 'h14import-full', ['disk.0.raw', 'disk.1.raw'], 1),
    () => entry(900, 12, 'h14import-base', ['disk.0.raw'], 2),
    () => entry(900, 12, 'h14import-inc1', ['disk.0.inc1.qcow2'], 3),
    () => entry(900, 12, 'h14import-inc2', ['disk.0.inc2.qcow2'], 4),
    () => ({ ...entry(knownVmId, 8, 'h14import-stranger', ['disk.0.raw'], 7), template: 2 }),
    // What a hostile or damaged datastore may hold: never written.
    () => ({ ...entry(900, 13, '../../etc', ['disk.0.raw'], 5) }),
    () => ({
      ...entry(900, 14, 'h14import-bad-size', ['disk.0.raw'], 6),
      files: [{ name: 'disk.0.raw', size: -1, sha256: null }],
    }),
  ],
};
const catalog = () => ({ templates: CATALOG.templates, backups: CATALOG.backups.map((b) => b()) });

/** Queues an import through the API, admits it, and commits `answer` as the host's. */
async function runImport(answer: unknown) {
  const queued = await call('POST', `/datastores/${datastoreId}/import`, admin);
  expect(queued.status).toBe(202);
  expect(queued.body).toMatchObject({ kind: 'import', state: 'QUEUED', datastoreId });
  const { input } = await requests.get(queued.body.id);
  const admitted = await admitMaintenance(input as never);
  const out = await commitMaintenance({ ...(input as Record<string, unknown>), host: answer } as never);
  await executions.update(queued.body.id, { state: 'SUCCEEDED' });
  return { admitted, out, execution: await executions.get(queued.body.id) };
}

describe('datastore import', () => {
  it('is for admins only, and a 404 for an unknown datastore', async () => {
    const forbidden = await call('POST', `/datastores/${datastoreId}/import`, bob);
    expect(forbidden.status).toBe(403);
    const missing = await call('POST', '/datastores/9999/import', admin);
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('NotFound');
  });

  it('asks a host for the catalog, and writes the images it holds: FULL and increment chain', async () => {
    // knownVmId's owner is bob: his VM's images are his, found by its domain UUID.
    const { admitted, out, execution } = await runImport(catalog());
    expect(admitted.task).toMatchObject({
      kind: 'catalog',
      datastore: { id: datastoreId, driver: 'restic' },
    });
    expect(admitted.imageId).toBeNull();
    expect(out).toMatchObject({ imported: 3, known: 0, skippedCount: 2, imageIds: [7, 12, 8] });
    expect(execution.params.result).toMatchObject({ imported: 3, known: 0 });
    expect((out as { skipped: { backupId: string }[] }).skipped.map((s) => s.backupId).sort()).toEqual([
      '../../etc',
      'h14import-bad-size',
    ]);

    const [full, stranger, chain] = await listImages({ datastoreId });
    // Stored under the known VM's id, but its template names another domain: the admin's.
    expect(stranger).toMatchObject({
      id: 8,
      vmId: knownVmId,
      owner: 'admin',
      group: 'admin',
      template: STRANGER_TEMPLATE,
    });
    expect(full).toMatchObject({
      id: 7,
      vmId: knownVmId,
      state: 'READY',
      mode: 'FULL',
      source: 'h14import-full',
      size: 1001 + 2001,
      template: KNOWN_TEMPLATE,
      owner: 'bob',
      group: 'users',
      permissions: 'um-u-----',
      createdAt: '2026-12-01T10:01:00.123Z',
      disks: [
        { id: 0, size: 1001, format: 'raw', file: 'disk.0.raw', sha256: SUM },
        { id: 1, size: 2001, format: 'raw', file: 'disk.1.raw' },
      ],
      increments: [],
    });
    expect(chain).toMatchObject({
      id: 12,
      vmId: 900,
      state: 'READY',
      mode: 'INCREMENT',
      source: 'h14import-base',
      size: 1002 + 1003 + 1004,
      template: LOST_TEMPLATE,
      owner: 'admin',
      group: 'admin',
    });
    expect(chain?.increments.map((i) => [i.id, i.parent, i.type, i.source, i.size])).toEqual([
      [0, undefined, 'FULL', 'h14import-base', 1002],
      [1, 0, 'INCREMENT', 'h14import-inc1', 1003],
      [2, 1, 'INCREMENT', 'h14import-inc2', 1004],
    ]);
    // The users who may see them do: the known VM's owner its image, the admin all.
    const seen = await call('GET', '/images', bob);
    expect(seen.body.items.map((i: { id: number }) => i.id)).toEqual([7]);
    const shown = await call('GET', '/images/12', admin);
    expect(shown.status).toBe(200);
  });

  it('raises the id counters past the ids the datastore holds', async () => {
    // Only the ids of the entries it accepted: 13 and 14 were skipped.
    expect(await allocateId('image')).toBe(13);
    expect(await allocateId('vm')).toBeGreaterThan(900);
  });

  it('a second import changes nothing', async () => {
    const before = await listImages({ datastoreId });
    const { out } = await runImport(catalog());
    expect(out).toMatchObject({ imported: 0, known: 3, imageIds: [] });
    expect(await listImages({ datastoreId })).toEqual(before);
  });

  it('refuses an answer that is no catalog, writing nothing', async () => {
    const before = await listImages({ datastoreId });
    await expect(runImport({ backups: 'all of them' })).rejects.toThrow();
    expect(await listImages({ datastoreId })).toEqual(before);
  });
});
