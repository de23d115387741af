/**
 * The dispatcher near its Lambda timeout, on DynamoDB Local with a fake Step Functions: with less
 * than DISPATCH_RESERVE_MS left it takes no further chunk of requests (it would be cut off between
 * a slot taken and its execution started), says so in its report, and leaves them QUEUED with
 * every slot free; the next run starts them.
 */
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { DISPATCH_RESERVE_MS, dispatch, handler } from '#functions/dispatcher/handler.ts';
import { readCounter } from '#functions/repo/counters.ts';
import { executions } from '#functions/repo/executions.ts';
import { pendingRequests } from '#functions/repo/requests.ts';
import { vms } from '#functions/repo/vms.ts';
import { call } from '../helpers/api-events.ts';
import { STATE_MACHINE_ENV, useControlPlane } from '../helpers/control-plane-fixture.ts';

const TOKEN = 'lb_deadline-admin-0123456789abcdef';
const NAMES = ['d-1', 'd-2', 'd-3'];

useControlPlane({
  name: 'deadline',
  env: {
    ...STATE_MACHINE_ENV,
    MAX_BACKUPS: '10',
    MAX_BACKUPS_HOST: '10',
  },
  sfn: true,
  admin: { token: TOKEN, group: 'admin' },
  hosts: ['kvm-deadline'],
  resticPassword: 'pw-deadline',
  inventory: NAMES.map((domain) => ({
    domain,
    state: 'RUNNING',
    disks: [{ id: 0, target: 'vda', source: `/images/${domain}.qcow2`, format: 'qcow2', size: 1 << 20 }],
    nics: [],
    template: '<domain/>',
  })),
});

async function queueBackups(): Promise<string[]> {
  const ids: string[] = [];
  for (const vm of await vms.list()) {
    const res = await call('POST', `/vms/${vm.id}/backup`, { token: TOKEN, body: { datastoreId: 1 } });
    expect(res.status, res.raw).toBe(202);
    ids.push(res.body.id as string);
  }
  return ids;
}

describe('a dispatcher run near its timeout', () => {
  it('takes no chunk with less than the reserve left, leaves the requests QUEUED, and the next run starts them', async () => {
    const ids = await queueBackups();
    const late = await dispatch(() => DISPATCH_RESERVE_MS - 1);
    expect(late).toMatchObject({ started: [], failed: [], outOfTime: true });
    expect((await pendingRequests()).map((r) => r.id).sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await executions.get(id)).state).toBe('QUEUED');
    expect(await readCounter('active')).toBe(0);

    // The Lambda entry point reads the time left from its context.
    const context = { awsRequestId: 'deadline', getRemainingTimeInMillis: () => 5_000 } as unknown as Context;
    expect(await handler({ reason: 'test' }, context)).toMatchObject({ started: [], outOfTime: true });

    const next = await handler({ reason: 'test' }, {
      awsRequestId: 'deadline-2',
      getRemainingTimeInMillis: () => 60_000,
    } as unknown as Context);
    expect([...next.started].sort()).toEqual([...ids].sort());
    expect(next.outOfTime).toBeUndefined();
    expect(await pendingRequests()).toEqual([]);
    expect(await readCounter('active')).toBe(ids.length);
  });
});
