/**
 * Host health on DynamoDB Local: a host silent for HOST_OFFLINE_SECONDS becomes OFFLINE at the
 * dispatcher's periodic run and MONITORED again at its next report; `host disable` keeps it
 * DISABLED whatever its runner reports; queued work on an OFFLINE or DISABLED host waits and
 * starts once the host is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatch, handler as dispatcher } from '#functions/dispatcher/handler.ts';
import { executions } from '#functions/repo/executions.ts';
import { hosts } from '#functions/repo/hosts.ts';
import { call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-host-health' };
const PERIODIC = { source: 'aws.scheduler' };

const report = () =>
  call('PUT', '/hosts/1/inventory', {
    ...admin,
    body: {
      vms: [
        {
          domain: 'vm-a',
          state: 'RUNNING',
          disks: [{ id: 0, target: 'vda', source: '/images/a.qcow2', format: 'qcow2', size: 1000 }],
          nics: [],
          template: '<domain/>',
        },
      ],
    },
  });
const setDisabled = (disabled: boolean) => call('PATCH', '/hosts/1', { ...admin, body: { disabled } });

useControlPlane({
  name: 'host-health',
  env: {
    BACKUP_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Backup',
    HOST_OFFLINE_SECONDS: '60',
  },
  sfn: true,
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw',
});
beforeAll(async () => {
  expect((await report()).status).toBe(200);
});
afterAll(() => {
  delete process.env.HOST_OFFLINE_SECONDS;
});

/** Makes the host's last report `seconds` old. */
async function silentFor(seconds: number) {
  await hosts.update(1, { lastHeartbeat: new Date(Date.now() - seconds * 1000).toISOString() });
}

describe('a silent host', () => {
  it('stays MONITORED within HOST_OFFLINE_SECONDS, becomes OFFLINE after, and MONITORED at its next report', async () => {
    expect((await hosts.get(1)).state).toBe('MONITORED');
    await silentFor(30);
    expect((await dispatcher(PERIODIC)).offline).toEqual([]);
    await silentFor(61);
    // A wake-up (not the periodic run) judges nobody.
    expect((await dispatcher({ reason: 'test' })).offline).toEqual([]);
    expect((await dispatcher(PERIODIC)).offline).toEqual([1]);
    expect((await hosts.get(1)).state).toBe('OFFLINE');
    const shown = await call('GET', '/hosts/1', admin);
    expect(shown.body.state).toBe('OFFLINE');

    // Its queued backup waits while it is OFFLINE, and starts once it reported again.
    const queued = await call('POST', '/vms/1/backup', { ...admin, body: { datastoreId: 1 } });
    expect(queued.status).toBe(202);
    expect((await dispatch()).waiting).toContain(queued.body.id);
    expect((await executions.get(queued.body.id)).state).toBe('QUEUED');
    expect((await report()).status).toBe(200);
    expect((await hosts.get(1)).state).toBe('MONITORED');
    expect((await dispatch()).started).toContain(queued.body.id);
    expect((await executions.get(queued.body.id)).state).toBe('RUNNING');
  });
});

describe('host disable / enable', () => {
  it('a DISABLED host stays so when its runner reports, and is never marked OFFLINE', async () => {
    const disabled = await setDisabled(true);
    expect(disabled.status).toBe(200);
    expect(disabled.body.state).toBe('DISABLED');
    expect((await report()).status).toBe(200);
    expect((await hosts.get(1)).state).toBe('DISABLED');
    await silentFor(120);
    expect((await dispatcher(PERIODIC)).offline).toEqual([]);
    expect((await hosts.get(1)).state).toBe('DISABLED');
  });

  it('enabled again: OFFLINE while its runner is silent, MONITORED once it reports', async () => {
    const enabled = await setDisabled(false);
    expect(enabled.status).toBe(200);
    expect(enabled.body.state).toBe('OFFLINE');
    expect((await report()).status).toBe(200);
    expect((await hosts.get(1)).state).toBe('MONITORED');
    // Enabling a host that is not disabled changes nothing.
    expect((await setDisabled(false)).body.state).toBe('MONITORED');
  });

  it('a bad value is a 400 that changes nothing', async () => {
    const bad = await call('PATCH', '/hosts/1', { ...admin, body: { disabled: 'yes' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('ValidationError');
    expect((await hosts.get(1)).state).toBe('MONITORED');
  });
});
