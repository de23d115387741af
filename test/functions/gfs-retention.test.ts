/**
 * GFS retention (KEEP_DAILY...) through the Backup steps on DynamoDB Local: the backups the
 * rules no longer keep expire at commit (DELETING, a delete queued), those they keep stay; a
 * chain whose oldest points fall out of every rule is flattened up to the oldest point kept.
 * Backups are dated by rewriting the committed records (the steps date them "now").
 */
import { describe, expect, it } from 'vitest';
import { executions } from '#functions/repo/executions.ts';
import { images } from '#functions/repo/images.ts';
import { dequeue } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as admitBackup } from '#functions/tasks/admit-backup.ts';
import { handler as commitBackup } from '#functions/tasks/commit-backup.ts';
import { call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-gfs' };
const DAY = 86_400_000;
const disk = (source: string) => ({
  id: 0,
  target: 'vda',
  source,
  format: 'qcow2',
  size: 1000,
  canIncrement: true,
});
useControlPlane({
  name: 'gfs',
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw',
  inventory: [
    {
      domain: 'vm-full',
      state: 'RUNNING',
      disks: [disk('/images/f.qcow2')],
      nics: [],
      template: '<domain/>',
    },
    {
      domain: 'vm-chain',
      state: 'RUNNING',
      disks: [disk('/images/c.qcow2')],
      nics: [],
      template: '<domain/>',
    },
  ],
});

async function setConfig(vmId: number, pairs: Record<string, string>) {
  expect(
    (await call('PUT', `/vms/${vmId}/backup-config`, { ...admin, body: { pairs, append: true } })).status,
  ).toBe(200);
}

/** One backup of the VM through Admit and Commit, as the state machine runs them. */
async function backup(vmId: number, n: number) {
  const res = await call('POST', `/vms/${vmId}/backup`, { ...admin, body: { datastoreId: 1 } });
  expect(res.body.message).toBeUndefined();
  expect(res.status).toBe(202);
  await dequeue(res.body.id);
  const input = { executionId: res.body.id as string, vmId, datastoreId: 1, reset: false };
  const admitted = await admitBackup(input);
  const point = admitted.task.increment as { id: number; parent: number | null; checkpoint: string } | null;
  const file = point && point.parent !== null ? `disk.0.inc${point.id}.qcow2` : 'disk.0.raw';
  const host = {
    backupId: `snap-${vmId}-${n}`,
    disks: [{ id: 0, size: 100, virtualSize: 1000, format: file.endsWith('.raw') ? 'raw' : 'qcow2', file }],
    increment: point && { id: point.id, parent: point.parent, checkpoint: point.checkpoint },
    chainReset: null,
    template: '<domain/>',
    durationMs: 5,
  };
  const committed = await commitBackup({ ...input, admit: admitted, host });
  return { imageId: admitted.imageId as number, committed };
}

const daysAgo = (n: number) => new Date(Date.now() - n * DAY).toISOString();

describe('GFS retention of full backups', () => {
  it('KEEP_DAILY=2: a backup on a third older day expires at the next commit; the two days kept', async () => {
    await setConfig(1, { KEEP_DAILY: '2' });
    const first = await backup(1, 1);
    await images.update(first.imageId, { createdAt: daysAgo(3) });
    const second = await backup(1, 2);
    await images.update(second.imageId, { createdAt: daysAgo(2) });
    // Two days with a backup: nothing expires yet.
    expect(second.committed.deleting).toEqual([]);
    const third = await backup(1, 3);
    expect(third.committed.deleting).toEqual([first.imageId]);
    expect((await images.get(first.imageId)).state).toBe('DELETING');
    expect((await images.get(second.imageId)).state).toBe('READY');
    expect((await vms.get(1)).backups.BACKUP_IDS).toEqual([second.imageId, third.imageId]);
  });

  it("two backups in one day: the newer is that day's, the older expires", async () => {
    const fourth = await backup(1, 4);
    // Days held: today (third, fourth) and two days ago (second): KEEP_DAILY=2 keeps fourth and second.
    const vm = await vms.get(1);
    expect(fourth.committed.deleting).toHaveLength(1);
    expect(vm.backups.BACKUP_IDS).toHaveLength(2);
    expect(vm.backups.BACKUP_IDS.at(-1)).toBe(fourth.imageId);
  });
});

describe('GFS retention of an increment chain', () => {
  it('flattens the chain up to the oldest point a rule keeps, never breaking it', async () => {
    await setConfig(2, { MODE: 'INCREMENT', KEEP_DAILY: '2' });
    const base = await backup(2, 0);
    const chainId = base.imageId;
    /** Dates point `id` of the chain `n` days ago (the steps date it now). */
    const date = async (id: number, n: number) => {
      const chain = await images.get(chainId);
      await images.update(chainId, {
        increments: chain.increments.map((inc) => (inc.id === id ? { ...inc, date: daysAgo(n) } : inc)),
      });
    };
    await date(0, 4);
    // Two days held (four days ago, today): both points kept.
    expect((await backup(2, 1)).committed.flatten).toBeNull();
    await date(1, 3);
    const third = await backup(2, 2);
    // Days held: today (2) and three days ago (1): point 0 falls out, merged into 1.
    expect(third.committed.flatten).toEqual(expect.any(String));
    expect((await vms.get(2)).backups.BACKUP_CONFIG.ACTIVE_FLATTEN).toBe('YES');
    expect(await executions.get(third.committed.flatten as string)).toMatchObject({
      kind: 'flatten',
      state: 'QUEUED',
      imageId: chainId,
    });
    expect(third.committed.deleting).toEqual([]);
  });
});
