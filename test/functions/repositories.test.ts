import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocateId, hostSlotName, readCounter, releaseSlot, takeSlot } from '#functions/repo/counters.ts';
import { images, listImages } from '#functions/repo/images.ts';
import { dequeue, pendingRequests, requestRank, requests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';

let db: DynamoDbLocal;
beforeAll(async () => {
  db = await startDynamoDbLocal();
});
afterAll(async () => {
  await db?.stop();
});

const owner = { owner: 'admin', group: 'admin', permissions: 'um-u-----' };

describe('repositories on DynamoDB Local', () => {
  it('allocates ids 1, 2, 3 per kind, never the same twice under concurrency', async () => {
    const ids = await Promise.all(Array.from({ length: 10 }, () => allocateId('vm')));
    expect(new Set(ids).size).toBe(10);
    expect(Math.min(...ids)).toBe(1);
    expect(Math.max(...ids)).toBe(10);
    expect(await allocateId('image')).toBe(1);
  });

  it('names the missing object: "VM 7 does not exist"', async () => {
    await expect(vms.get(7)).rejects.toMatchObject({ name: 'NotFound', message: 'VM 7 does not exist' });
  });

  it('never takes more slots than MAX_BACKUPS or MAX_BACKUPS_HOST, even concurrently', async () => {
    const taken = await Promise.all(Array.from({ length: 6 }, () => takeSlot(1, 3, 2)));
    expect(taken.filter(Boolean)).toHaveLength(2);
    expect(await readCounter(hostSlotName(1))).toBe(2);
    // Host 2 may take one more cloud-wide slot, then the cloud-wide limit (3) stops it.
    expect(await takeSlot(2, 3, 2)).toBe(true);
    expect(await takeSlot(2, 3, 2)).toBe(false);
    expect(await readCounter('active')).toBe(3);
    expect(await releaseSlot(1)).toBe(true);
    expect(await readCounter('active')).toBe(2);
    expect(await readCounter(hostSlotName(1))).toBe(1);
  });

  it('never releases below zero', async () => {
    expect(await releaseSlot(9)).toBe(false);
    expect(await readCounter(hostSlotName(9))).toBe(0);
  });

  it('lists pending requests by priority, then age, and drops dispatched ones', async () => {
    const base = { kind: 'backup' as const, hostId: 1, input: {}, requestedBy: 'admin' };
    await requests.put({
      ...base,
      id: 'a',
      queue: 'pending',
      priority: 10,
      rank: requestRank(10, '2026-01-01T00:00:02Z'),
      createdAt: 'x',
    });
    await requests.put({
      ...base,
      id: 'b',
      queue: 'pending',
      priority: 50,
      rank: requestRank(50, '2026-01-01T00:00:03Z'),
      createdAt: 'x',
    });
    await requests.put({
      ...base,
      id: 'c',
      queue: 'pending',
      priority: 10,
      rank: requestRank(10, '2026-01-01T00:00:01Z'),
      createdAt: 'x',
    });
    expect((await pendingRequests()).map((r) => r.id)).toEqual(['b', 'c', 'a']);
    await dequeue('b');
    expect((await pendingRequests()).map((r) => r.id)).toEqual(['c', 'a']);
    expect((await requests.get('b')).queue).toBeUndefined();
  });

  it('filters images by VM and datastore', async () => {
    const image = (id: number, vmId: number, datastoreId: number) => ({
      ...owner,
      id,
      name: `${vmId}-${id}`,
      type: 'BACKUP' as const,
      vmId,
      datastoreId,
      state: 'READY' as const,
      mode: 'FULL' as const,
      createdAt: '2026-01-01T00:00:00Z',
    });
    await images.put(image(1, 3, 100));
    await images.put(image(2, 3, 101));
    await images.put(image(3, 4, 100));
    expect((await listImages({ vmId: 3 })).map((i) => i.id)).toEqual([1, 2]);
    expect((await listImages({ datastoreId: 100 })).map((i) => i.id)).toEqual([1, 3]);
    expect((await listImages({ vmId: 3, datastoreId: 101 })).map((i) => i.id)).toEqual([2]);
    expect(await listImages()).toHaveLength(3);
  });
});
